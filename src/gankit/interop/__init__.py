"""Reading and writing other tools' StyleGAN2 checkpoints without running their code.

- :mod:`.safe_pickle`: a restricted unpickler for NVlabs ``.pkl`` snapshots (tensors and plain
  data only; the source code stored in the file is never imported or executed);
- :mod:`.layouts`: parameter-name maps between gankit's StyleGAN2 networks (which follow NVlabs'
  names) and rosinality's ``stylegan2-pytorch``, and the architecture read from the tensors;
- :mod:`.stylegan2_io`: ``import_stylegan2`` (any of those files -> a gankit export directory)
  and ``export_rosinality`` (a gankit model -> a rosinality ``.pt``).
"""
