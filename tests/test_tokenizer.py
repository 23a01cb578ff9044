"""The tokenizer: trained locally, any script round-trips, cached by data and settings."""

from unicodedata import normalize

from qattn.config import TokenizerConfig
from qattn.tokenizer import PAD, build_tokenizer, encode

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "東京は日本の首都です。北京是中国的首都。",
    "Ελληνικά, русский язык, العربية, हिन्दी — naïve café façade.",
    "Emoji 🙂🚀 and math ∑ x² ≤ ∞; tabs\tand\nnewlines.",
] * 5

MIXED = "Mixed: 東京 and Москва, naïve café 🙂 — 北京是中国的首都, x² ≤ ∞, 한국어 ﬁn"


def test_round_trip_of_mixed_script_text(tmp_path):
    tokenizer = build_tokenizer(CORPUS, TokenizerConfig(vocab_size=400, cache_dir=str(tmp_path), lowercase=False))
    ids = tokenizer.encode(MIXED).ids
    assert tokenizer.decode(ids) == normalize("NFKC", MIXED)
    assert tokenizer.token_to_id(PAD) == 0 and 0 not in ids


def test_lowercasing_normalises_before_splitting(tmp_path):
    tokenizer = build_tokenizer(CORPUS, TokenizerConfig(vocab_size=400, cache_dir=str(tmp_path)))
    assert tokenizer.decode(tokenizer.encode("Quick FOX").ids) == "quick fox"


def test_cache_is_keyed_by_texts_and_settings(tmp_path):
    config = TokenizerConfig(vocab_size=400, cache_dir=str(tmp_path))
    first = build_tokenizer(CORPUS, config)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    again = build_tokenizer(CORPUS, config)
    assert files[0].stat().st_mtime_ns == stamp and again.to_str() == first.to_str()
    build_tokenizer(CORPUS, TokenizerConfig(vocab_size=500, cache_dir=str(tmp_path)))
    build_tokenizer(CORPUS[:-1], config)
    assert len(list(tmp_path.iterdir())) == 3


def test_encode_truncates(tmp_path):
    tokenizer = build_tokenizer(CORPUS, TokenizerConfig(vocab_size=400, cache_dir=str(tmp_path)))
    ids = encode(tokenizer, [CORPUS[0] * 20, "a"], max_length=16)
    assert len(ids[0]) == 16 and 1 <= len(ids[1]) <= 2
