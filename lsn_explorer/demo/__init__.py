"""Building the bundled demo model from the demo corpus, and its model card.
"""
