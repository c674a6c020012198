"""Text and languages: the language table (`languages`), writing systems (`writing`) and corpora
(`corpora`: local files, FLORES, Tatoeba, Wikipedia).
"""
