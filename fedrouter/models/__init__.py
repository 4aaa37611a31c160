"""Models: the built-in tiny LM, base-model loading and the LoRA backbone."""
