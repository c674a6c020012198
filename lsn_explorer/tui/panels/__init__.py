"""One tab of the app per flow: languages, neurons, interventions, generate, score, history."""
