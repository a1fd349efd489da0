import numpy as np
import torch

from nvs.data.synthetic.contact import contact_sheet


def test_grid_places_images_above_their_masks():
    images = torch.rand(10, 3, 8, 6, generator=torch.Generator().manual_seed(0))
    masks = (torch.arange(10) % 2).float()[:, None, None, None].expand(10, 1, 8, 6)
    sheet = contact_sheet(images, masks, max_frames=10, columns=4, gap=2)
    assert sheet.shape == (3 * (16 + 2) - 2, 4 * (6 + 2) - 2, 3) and sheet.dtype == np.uint8
    assert np.array_equal(sheet[:8, :6], (images[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    assert (sheet[8:16, :6] == 0).all() and (sheet[8:16, 8:14] == 255).all()
    assert contact_sheet(images, None, max_frames=4).shape == (8, 4 * 8 - 2, 3)
