"""The browser studio (``gankit serve``): sliders and uploads on trained runs and imported
models. :mod:`.tools` holds what each control does (plain functions, no gradio); :mod:`.app`
builds the gradio page on them; :mod:`.uploads` reads uploaded pictures with bounds."""
