"""Test-time interventions: `spec` (the torch-free, validated `Intervention` and its syntax),
`apply` (the compiled `EditPlan` written into activations) and `resolve` (looking neurons and
values up in a session for one model).
"""
