"""The one training loop every family runs on."""
