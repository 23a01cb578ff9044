"""A tiny randomly initialised BERT, saved as a Hugging Face folder, for tests of pretrained encoders (nothing
downloads): a WordPiece tokenizer trained here on the synthetic task's words, and an encoder built from a
config."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from qattn.config import SyntheticConfig
from qattn.data import synthetic_dataset

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def save_tiny_encoder(folder: Path, *, hidden: int = 16, layers: int = 2, positions: int = 40, seed: int = 0) -> Path:
    """A BERT of ``layers`` blocks, width ``hidden``, ``positions`` positions, saved in ``folder``."""
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    texts = synthetic_dataset(SyntheticConfig(train_docs=40, dev_docs=10, test_docs=10, vocab=50), seed=0).train.texts
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=200, special_tokens=SPECIALS))
    cls, sep = wordpiece.token_to_id("[CLS]"), wordpiece.token_to_id("[SEP]")
    wordpiece.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=wordpiece, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=wordpiece.get_vocab_size(), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=positions)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def backbone_overrides(folder: Path) -> list[str]:
    """Overrides that read the tiny encoder in ``folder`` (chunks of 16 tokens, features cached in ``folder``)."""
    return [f"model.backbone.name={folder}", f"model.backbone.cache_dir={folder.parent / 'features'}",
            "model.chunk_size=16"]
