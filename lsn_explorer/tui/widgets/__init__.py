"""Renderables and small widgets shared by the panels."""
