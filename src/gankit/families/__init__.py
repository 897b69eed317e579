"""One file per GAN family; each registers itself with :mod:`gankit.registry`."""
