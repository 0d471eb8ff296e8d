"""Recipes, ``--set`` overrides and config validation."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from arinext import create_model, list_models
from arinext.train.config import TrainConfig, apply_overrides, list_recipes, load_config

PAPER_DATASETS = ["vggsound", "epic_sounds", "epic_kitchens_100", "speech_commands_v2", "urbansound8k", "nsynth"]


def test_every_dataset_has_a_recipe():
    assert set(PAPER_DATASETS + ["folder"]) <= set(list_recipes())


@pytest.mark.parametrize("name", sorted(set(list_recipes()) - {"keywords"}))
def test_recipe_loads_and_builds_its_model(name):
    cfg = load_config(name)
    assert cfg.model in list_models()
    assert "num_classes" not in cfg.model_args
    model = create_model(cfg.model, num_classes=7, **cfg.model_args)
    assert model.head.num_classes == 7
    assert cfg.data.dataset in (name, "folder")
    assert cfg.precise_bn_batches == 200
    assert cfg.optim.nesterov and cfg.optim.momentum == 0.9 and cfg.optim.weight_decay == 1e-4
    assert cfg.model_args["drop_rate"] == 0.5 and cfg.data.batch_size == 32


def test_keywords_recipe_is_the_demos_recipe(monkeypatch):
    """The keywords recipe trains what `arinext demo` trains (at 60 instead of 120 epochs)."""
    from arinext.apps import demo

    seen = {}
    monkeypatch.setattr(demo, "fit", lambda cfg, out, progress=None, plan_epochs=None: seen.setdefault("cfg", cfg))
    demo.train_demo_model(demo.DemoOptions(epochs=60, num_workers=0), demo.bundled_sample(), ["yes", "no"], "x")
    ours = load_config("keywords", ["data.root=r", "data.num_workers=0", "eval_every=7", "device=cpu"]).to_dict()
    theirs = seen["cfg"].to_dict()
    theirs["data"].update(root="r", dataset_args={})
    assert ours == {**theirs, "eval_every": 7}


def test_vggsound_recipe_is_the_papers_schedule():
    o = load_config("vggsound").optim
    assert (o.lr, o.epochs, o.lr_steps, o.lr_factors, o.freeze_bn) == (0.01, 50, [30, 40], [0.1, 0.01], False)
    assert [o.lr_at(e) for e in (0, 29, 30, 39, 40, 49)] == pytest.approx([0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4])


@pytest.mark.parametrize("name", [n for n in PAPER_DATASETS if n != "vggsound"] + ["folder"])
def test_finetune_recipes(name):
    cfg = load_config(name)
    o = cfg.optim
    assert (o.lr, o.epochs, o.lr_steps, o.lr_factors, o.freeze_bn) == (0.001, 30, [20, 25], [0.1, 0.01], None)
    raw = yaml.safe_load((resources.files("arinext") / "configs" / f"{name}.yaml").read_text())
    assert "init_from" in raw  # fine-tuning recipes say where the VGG-Sound weights go


def test_folder_recipe_freezes_batchnorm_only_when_fine_tuning():
    assert not load_config("folder").freezes_bn()
    assert load_config("folder", ["init_from=runs/x/best.pt"]).freezes_bn()
    assert not load_config("folder", ["init_from=runs/x/best.pt", "optim.freeze_bn=false"]).freezes_bn()


def test_urbansound8k_runs_all_ten_folds():
    assert load_config("urbansound8k").data.folds == list(range(1, 11))


def test_overrides_parse_yaml_values():
    cfg = load_config(
        "vggsound",
        [
            "optim.lr=0.003",
            "data.folds=[1, 2]",
            "model_args.drop_rate=0.1",
            "data.frontend.num_frames=400",
            "init_from=null",
            "amp=true",
        ],
    )
    assert cfg.optim.lr == 0.003 and cfg.data.folds == [1, 2] and cfg.model_args["drop_rate"] == 0.1
    assert cfg.data.frontend == {"num_frames": 400} and cfg.init_from is None and cfg.amp is True


@pytest.mark.parametrize(
    "override, match",
    [
        ("optim.learning_rate=0.1", "optim.learning_rate"),
        ("nonsense=1", "nonsense"),
        ("data.root.sub=1", "data.root"),
        ("optim.lr", "key.sub=value"),
        ("model_args.num_classes=10", "number of classes comes from the dataset"),
        ("data.train_subset=train", "train_subset"),
        ("optim.lr_factors=[0.1]", "differ in length"),
    ],
)
def test_bad_overrides_raise(override, match):
    with pytest.raises(ValueError, match=match):
        load_config("vggsound", [override])


def test_unknown_yaml_key_raises(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model: audio_rep_inception_next\noptim: {lr: 0.1, warmup: 5}\n")
    with pytest.raises(ValueError, match="optim.warmup"):
        load_config(path)


def test_unknown_recipe_and_missing_file():
    with pytest.raises(ValueError, match="unknown recipe"):
        load_config("no_such_recipe")
    with pytest.raises(FileNotFoundError):
        load_config("missing/recipe.yaml")


def test_config_round_trips_through_dict():
    cfg = load_config("epic_kitchens_100", ["data.root=/x"])
    again = load_config(cfg.to_dict())
    assert again == cfg and isinstance(again, TrainConfig)


def test_apply_overrides_does_not_mutate_input():
    values = {"optim": {"lr": 0.1}}
    apply_overrides(values, ["optim.lr=0.2"])
    assert values == {"optim": {"lr": 0.1}}


@pytest.mark.parametrize("override", ["optim.lr=fast", "optim.epochs=2.5", "data.folds=3", "amp=1"])
def test_wrongly_typed_values_raise(override):
    with pytest.raises(ValueError, match="must be"):
        load_config("vggsound", [override])
