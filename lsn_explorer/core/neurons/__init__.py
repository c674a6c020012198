"""Neuron sets and how they are found: `neuron_set` (the NeuronSet), `methods` (the one registry of
identification methods and their parameters), `lape` (LAPE and Act Prob 90p), `transfer`
(Type-1 / Type-2), `baseline` (random sets), `specificity` (η², Jaccard) and `runs` (running a
method against a session and storing the set).
"""
