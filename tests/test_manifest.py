import gzip
import json

import pytest
import torch

from nvs.commands.data import main as data_main
from nvs.data.co3d import Co3dDataset
from nvs.data.manifest import load_manifest, load_scene_views, make_sparsefusion_manifest, save_manifest
from tests.co3d_layout import write_tiny_co3d

LAYOUT = {
    "apple": {"b_long": 40, "a_short": 13, "c_drop": 11},
    "vase": {"x": 14},
    "zzz_custom": {"q": 13},
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("co3d")
    write_tiny_co3d(root, LAYOUT, 24, 32, empty_mask_frames=(5,))
    return root


def direct_rule(root, categories, views, global_seed=False):
    """docs/protocol.md §1-2 written out plainly on the raw files."""
    scenes, running = [], 0
    for category in categories:
        frames = json.loads(gzip.decompress((root / category / "frame_annotations.jgz").read_bytes()))
        by_key = {(f["sequence_name"], f["frame_number"]): f for f in frames}
        test = json.loads((root / category / "set_lists" / "set_lists_fewview_dev.json").read_text())["test"]
        per_seq = {}
        for seq, number, _ in test:
            if by_key[(seq, number)]["mask"]["mass"] > 1:
                per_seq.setdefault(seq, []).append(by_key[(seq, number)])
        kept = [s for s in sorted(per_seq) if len(per_seq[s]) > 10]
        for index, seq in enumerate(kept):
            rows = sorted(per_seq[seq], key=lambda f: f["frame_timestamp"])
            idx = torch.linspace(0, len(rows) - 1, 32).long()
            g = torch.Generator()
            g.manual_seed(running if global_seed else index)
            perm = torch.randperm(32, generator=g)
            scenes.append(
                (category, seq, [rows[i]["frame_number"] for i in idx], {v: perm[:v].tolist() for v in views})
            )
            running += 1
    return scenes


def test_follows_the_rule(root):
    m = make_sparsefusion_manifest(root)
    assert m["options"]["categories"] == ["apple", "vase"] and "categories" in m["deviations"]
    got = [
        (s["category"], s["sequence"], s["frame_numbers"], {int(k): v for k, v in s["inputs"].items()})
        for s in m["scenes"]
    ]
    assert got == direct_rule(root, ["apple", "vase"], (2, 3, 6))
    assert [s["sequence"] for s in m["scenes"]] == ["a_short", "b_long", "x"]  # c_drop: 9 test frames left
    assert all(s["targets"]["2"] == list(range(32)) for s in m["scenes"])
    s = m["scenes"][0]
    assert set(s["inputs"]["2"]) < set(s["inputs"]["3"]) < set(s["inputs"]["6"])
    assert 5 not in s["frame_numbers"] and 0 not in s["frame_numbers"]  # empty mask, train frame
    assert s["frame_numbers"][0] == 12  # timestamps run backwards: the latest frame comes first


def test_deviations_are_flags(root):
    m = make_sparsefusion_manifest(
        root, categories=["zzz_custom", "apple"], views=(3, 1), exclude_inputs_from_targets=True, seed_scope="global"
    )
    assert m["deviations"] == ["categories", "exclude_inputs_from_targets", "seed_scope", "views"]
    got = [
        (s["category"], s["sequence"], s["frame_numbers"], {int(k): v for k, v in s["inputs"].items()})
        for s in m["scenes"]
    ]
    assert got == direct_rule(root, ["apple", "zzz_custom"], (1, 3), global_seed=True)
    for s in m["scenes"]:
        assert sorted(s["targets"]["3"] + s["inputs"]["3"]) == list(range(32))
    with pytest.raises(ValueError, match="not under"):
        make_sparsefusion_manifest(root, categories=["car"])


def test_cli_identical_runs_and_load(root, tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out in (a, b):
        assert data_main(["manifest", str(root), "--protocol", "sparsefusion", "--out", str(out)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert load_manifest(a) == make_sparsefusion_manifest(root)
    assert (
        data_main(
            [
                "manifest",
                str(root),
                "--out",
                str(tmp_path / "c.json"),
                "--views",
                "2,4",
                "--categories",
                "vase",
                "--exclude-inputs",
            ]
        )
        == 0
    )
    c = load_manifest(tmp_path / "c.json")
    assert c["options"]["views"] == [2, 4] and c["options"]["exclude_inputs_from_targets"]


def test_load_rejects_bad_files(root, tmp_path):
    with pytest.raises(FileNotFoundError, match="nvs data manifest"):
        load_manifest(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        load_manifest(bad)
    m = make_sparsefusion_manifest(root)
    m["scenes"][1]["inputs"]["3"] = [0, 0, 1]
    with pytest.raises(ValueError, match="b_long.*3 distinct"):
        save_manifest(tmp_path / "m.json", m)
    m["version"] = 99
    with pytest.raises(ValueError, match="version"):
        save_manifest(tmp_path / "m.json", m)
    assert not (tmp_path / "m.json").exists()


def test_scene_views_follow_the_manifest(root):
    m = make_sparsefusion_manifest(root, categories=["apple"])
    scene = m["scenes"][0]  # a_short: 11 frames, so the 32 picks repeat some
    views = load_scene_views(Co3dDataset(root), scene, size=16)
    assert views.frame_ids == scene["frame_numbers"] and len(set(views.frame_ids)) == 11
    assert views.images.shape == (32, 3, 16, 16) and views.valid_region is not None and views.depths is None


def test_synthetic_world_manifest(tmp_path):
    from nvs.data.synthetic.writer import write_co3d_world

    root = write_co3d_world(
        tmp_path / "world",
        categories=2,
        sequences_per_category=2,
        frames=12,
        size=16,
        seed=0,
        supersample=1,
        num_points=10,
        show_progress=False,
    )
    m = make_sparsefusion_manifest(root)
    categories = sorted(m["options"]["categories"])
    assert len(categories) == 2 and len(m["scenes"]) == 2  # one dev sequence per category, 12 test frames
    got = [
        (s["category"], s["sequence"], s["frame_numbers"], {int(k): v for k, v in s["inputs"].items()})
        for s in m["scenes"]
    ]
    assert got == direct_rule(root, categories, (2, 3, 6))


def test_cli_reports_bad_root(tmp_path, capsys):
    from nvs.cli import main

    assert main(["data", "manifest", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.json")]) == 2
    assert "nvs data manifest: error: CO3D root" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()
