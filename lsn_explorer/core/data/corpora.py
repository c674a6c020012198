"""Per-language text: the demo corpus and any UTF-8 text files, one sentence per line.

A corpus folder holds `<lang>.txt` files whose line i means the same in every file (parallel),
as `assets/corpus/` does. Held-out lines (every tenth line, i % 10 == 9) are excluded from the
demo model's training and used for perplexity and continuation checks, so the split is fixed
by the file, not by a random seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Sequence

from lsn_explorer.assets import DEMO_CORPUS_DIR
from lsn_explorer.core.data.languages import Language, get_language
from lsn_explorer.errors import CorpusError

HELDOUT_EVERY = 10  # every tenth line (10 %) is held out
Split = Literal["all", "train", "heldout"]


def is_heldout(index: int) -> bool:
    """Whether line `index` (0-based) of a corpus file belongs to the held-out split."""
    return index % HELDOUT_EVERY == HELDOUT_EVERY - 1


def read_lines(path: str | Path) -> list[str]:
    """Non-empty, stripped lines of a UTF-8 text file.

    Raises:
        CorpusError: the file is missing, not UTF-8, or has no text.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"corpus file {path} does not exist", "check the path or the --corpus folder")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"corpus file {path} is not UTF-8 (byte {exc.start})", "convert it with iconv -t UTF-8"
        ) from exc
    lines = [line.strip() for line in text.splitlines()]
    if not any(lines):
        raise CorpusError(f"corpus file {path} is empty", "give a file with one sentence per line")
    return lines


def select(lines: list[str], split: Split) -> list[str]:
    """The lines of one split, keeping file order and dropping blank lines."""
    if split == "all":
        return [l for l in lines if l]
    want_heldout = split == "heldout"
    return [l for i, l in enumerate(lines) if l and is_heldout(i) == want_heldout]


def corpus_file(lang: str | Language, corpus_dir: str | Path = DEMO_CORPUS_DIR) -> Path:
    """The file holding `lang` in a corpus folder, with a clear error when there is none.

    Recognised names: `<code>.txt` (ours), FLORES-200 `<flores code>.devtest` / `.dev`
    (`hin_Deva.devtest`), Tatoeba `tatoeba.<code>-eng.<code>` (`tatoeba.cmn-eng.cmn`).
    """
    language = lang if isinstance(lang, Language) else get_language(lang)
    found = _find_file(language, Path(corpus_dir))
    if found is not None:
        return found
    available = ", ".join(available_languages(corpus_dir)) or "none"
    raise CorpusError(
        f"no corpus text for {language.code} in {corpus_dir}",
        f"languages with text there: {available}; or pass --corpus with a {language.code}.txt file",
    )


def _find_file(language: Language, folder: Path) -> Path | None:
    candidates = [folder / f"{language.code}.txt"]
    if flores := language.code_in("flores"):
        candidates += [folder / f"{flores}.devtest", folder / f"{flores}.dev"]
    if tatoeba := language.code_in("tatoeba"):
        candidates.append(folder / f"tatoeba.{tatoeba}-eng.{tatoeba}")
    return next((path for path in candidates if path.is_file()), None)


def language_of_file(path: str | Path) -> Language:
    """Infer the language of a corpus file from its name (see `corpus_file` for the patterns)."""
    from lsn_explorer.core.data.languages import from_dataset_code

    path = Path(path)
    name = path.name
    if name.startswith("tatoeba.") and "-eng." in name:
        return from_dataset_code("tatoeba", path.suffix.lstrip("."))  # type: ignore[return-value]
    if path.suffix in (".devtest", ".dev"):
        return from_dataset_code("flores", path.stem)  # type: ignore[return-value]
    return get_language(path.stem)


def available_languages(corpus_dir: str | Path = DEMO_CORPUS_DIR) -> list[str]:
    """Codes of the table's languages that have a corpus file in the folder (see `corpus_file`)."""
    from lsn_explorer.core.data.languages import language_table

    folder = Path(corpus_dir)
    if not folder.is_dir():
        return []
    return sorted(lang.code for lang in language_table().values() if _find_file(lang, folder))


@dataclass(frozen=True)
class ParallelCorpus:
    """Line-aligned sentences: `lines[lang][i]` all mean the same thing."""

    lines: dict[str, list[str]]

    @property
    def languages(self) -> list[str]:
        return list(self.lines)

    def __len__(self) -> int:
        return len(next(iter(self.lines.values()))) if self.lines else 0

    def split(self, split: Split) -> "ParallelCorpus":
        """The same languages restricted to one split (alignment is kept)."""
        keep = [i for i in range(len(self)) if split == "all" or is_heldout(i) == (split == "heldout")]
        return ParallelCorpus({lang: [rows[i] for i in keep] for lang, rows in self.lines.items()})


def load_parallel(langs: Iterable[str], corpus_dir: str | Path = DEMO_CORPUS_DIR) -> ParallelCorpus:
    """Read `<lang>.txt` for each language and check the files are line-aligned.

    Raises:
        CorpusError: a file is missing/empty, the line counts differ, or a line is blank.
    """
    lines: dict[str, list[str]] = {}
    for lang in langs:
        path = corpus_file(lang, corpus_dir)
        lines[path.stem] = read_lines(path)
    counts = {lang: len(rows) for lang, rows in lines.items()}
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{lang}={n}" for lang, n in counts.items())
        raise CorpusError(
            f"parallel files have different line counts ({detail})",
            "line i must be the same sentence in every language; fix the shorter files",
        )
    for lang, rows in lines.items():
        for i, row in enumerate(rows):
            if not row:
                raise CorpusError(
                    f"{lang}.txt line {i + 1} is empty in a parallel corpus",
                    "every line needs its sentence, or remove the line from all files",
                )
    return ParallelCorpus(lines)


WIKIPEDIA_DATASET, WIKIPEDIA_DUMP = "wikimedia/wikipedia", "20231101"


def wikipedia_file(lang: str, out_dir: str | Path, max_chars: int = 2_000_000) -> Path:
    """Stream the start of a language's Wikipedia (Hugging Face `datasets`) into a text file.

    Needs the `datasets` package and the network; the file is kept (and reused) under `out_dir`
    so the statistics record can hash it like any local corpus.
    """
    import importlib.util
    import os

    code = get_language(lang).code
    path = Path(out_dir) / f"wikipedia-{WIKIPEDIA_DUMP}-{code}.txt"
    if path.is_file():
        return path
    if importlib.util.find_spec("datasets") is None:
        raise CorpusError("the Wikipedia corpus needs the `datasets` package, which is not installed",
                          "pip install datasets, or pass local text files with --corpus")
    if os.environ.get("HF_DATASETS_OFFLINE", "") not in ("", "0") or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        raise CorpusError("the Wikipedia corpus needs the network, and Hugging Face is set to offline",
                          "unset HF_HUB_OFFLINE / HF_DATASETS_OFFLINE, or pass local text files with --corpus")
    import datasets

    stream = datasets.load_dataset(WIKIPEDIA_DATASET, f"{WIKIPEDIA_DUMP}.{code}", split="train", streaming=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    tmp = path.with_suffix(".part")
    with tmp.open("w", encoding="utf-8") as f:
        for article in stream:
            for line in article["text"].splitlines():
                if line.strip():
                    f.write(line.strip() + "\n")
                    written += len(line)
            if written >= max_chars:
                break
    tmp.replace(path)
    return path


def resolve_corpora(langs: Sequence[str], sources: Sequence[str] | None = None,
                    cache_root: str | Path | None = None) -> dict[str, Path]:
    """The text file of each language, from what a user named as corpus sources.

    `sources` is one of: nothing (the demo corpus); `["hf:wikipedia"]` (the start of each
    language's Wikipedia, downloaded once into `<cache_root>/corpora/`); one folder (see
    `corpus_file` for the names recognised there); or files, each named by language
    (`zh.txt`, `hin_Deva.devtest`, `tatoeba.cmn-eng.cmn`) or given as `lang=FILE`.

    Args:
        langs: language codes wanted, in the order of the result.
        sources: the corpus sources, as given on the command line (`--corpus`).
        cache_root: the session store whose `corpora/` folder keeps downloaded text (default:
            $LSN_SESSIONS_DIR or ./sessions).

    Raises:
        CorpusError: a named file does not exist, or no file was given for a language.
    """
    if not sources:
        return {lang: corpus_file(lang, DEMO_CORPUS_DIR) for lang in langs}
    if list(sources) == ["hf:wikipedia"]:
        from lsn_explorer.session.store import default_root

        root = Path(cache_root) if cache_root else default_root()
        return {lang: wikipedia_file(lang, root / "corpora") for lang in langs}
    if len(sources) == 1 and Path(sources[0]).is_dir():
        return {lang: corpus_file(lang, sources[0]) for lang in langs}
    files: dict[str, Path] = {}
    for source in sources:
        code, _, path = source.rpartition("=") if "=" in source else ("", "", source)
        lang = get_language(code).code if code else language_of_file(path).code
        if not Path(path).is_file():
            raise CorpusError(f"corpus file {path} does not exist", "check the path")
        files[lang] = Path(path)
    missing = [lang for lang in langs if lang not in files]
    if missing:
        raise CorpusError(f"no corpus file given for {', '.join(missing)}",
                          "add FILE arguments named by language (zh.txt, hin_Deva.devtest) or lang=FILE")
    return {lang: files[lang] for lang in langs}
