"""Language lists shared by tests."""

CORPUS_LANGS = ["en", "fr", "es", "vi", "id", "ja", "zh", "hi", "ur", "bn", "ta", "ko", "nl", "it"]
DISTINCT_SCRIPT_LANGS = ["zh", "ja", "hi", "ta", "ko", "ur", "bn"]
