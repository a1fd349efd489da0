import torch

from nvs.data.synthetic.textures import TEXTURE_NAMES, TEXTURE_SIZE, sample_textures, texture_atlas


def test_atlas_holds_every_texture_with_detail():
    atlas = texture_atlas()
    assert atlas.shape == (3, TEXTURE_SIZE, TEXTURE_SIZE * len(TEXTURE_NAMES))
    assert 0 <= float(atlas.min()) and float(atlas.max()) <= 1
    tiles = atlas.reshape(3, TEXTURE_SIZE, len(TEXTURE_NAMES), TEXTURE_SIZE)
    assert (tiles.std(dim=(0, 1, 3)) > 0.05).all()  # no flat tile
    assert texture_atlas() is atlas  # cached


def test_lookup_at_texel_centres_returns_the_texels():
    atlas = texture_atlas()
    s = TEXTURE_SIZE
    g = torch.Generator().manual_seed(0)
    tex = torch.randint(0, len(TEXTURE_NAMES), (50,), generator=g)
    ij = torch.randint(1, s - 1, (50, 2), generator=g)
    uv = (ij.flip(-1).float() + 0.5) / s + 3  # whole periods wrap
    got = sample_textures(atlas, tex, uv)
    expected = atlas[:, ij[:, 0], tex * s + ij[:, 1]].T
    assert torch.allclose(got, expected, atol=1e-4)
