"""Modal screens: session picker, model opener, help."""
