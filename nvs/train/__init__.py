"""EDM training: clips (data), the objective (loss), the loop (trainer) and torchrun (distributed)."""
