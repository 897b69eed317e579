"""The studio's page: gradio Blocks wired to :mod:`gankit.studio.tools`. One tab per served model,
inside it one tab per tool the model's family supports (:meth:`Loaded.capabilities`) and its run
page. Every event of a model shares one queue slot (``concurrency_id``), so requests for a model
run one at a time in arrival order and the queue holds at most ``queue_size`` waiting ones:
ten tabs moving sliders wait their turn instead of running ten generators at once.

Offline by construction: analytics off, the system font stack instead of web fonts, no share
link. Uploads arrive as files (``gr.File``) and are decoded by :func:`..uploads.read_upload`
with its byte and pixel bounds, never by gradio."""

from __future__ import annotations

import os
import shutil
import tempfile
from html import escape
from pathlib import Path

from gankit.errors import GankitError
from gankit.studio import tools
from gankit.studio.uploads import MAX_BYTES

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"]


def _import_gradio():
    try:
        import gradio as gr
    except ImportError:
        raise GankitError("the studio needs gradio: pip install 'gankit[web]'") from None
    return gr


def build_app(loaded: dict[str, tools.Loaded], *, folder: Path | None = None, queue_size: int = 32):
    """The gradio Blocks of the studio for ``loaded`` models (queued, not launched)."""
    gr = _import_gradio()
    folder = Path(folder or tempfile.mkdtemp(prefix="gankit-studio-"))
    with gr.Blocks(title="gankit studio", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# gankit studio\n" + ", ".join(f"**{escape(n)}** ({m.family.name}, step {m.model.step})"
                                                    for n, m in loaded.items()))
        with gr.Tabs():
            for name, m in loaded.items():
                with gr.Tab(name, elem_id=f"model-{slug(name)}"):
                    _model_tabs(gr, demo, m, folder, loaded)
    demo.queue(default_concurrency_limit=1, max_size=queue_size)
    demo.studio_folder = folder
    demo.studio_theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)  # given to launch (gradio 6)
    return demo


def slug(text: str) -> str:
    """A model's name as element ids and API names use it (the load bench calls ``/{slug}_edit``)."""
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower())


def _guarded(gr, fn):
    """A tool call whose GankitError becomes the page's one-line message (gr.Error)."""

    def call(*args):
        try:
            return fn(*args)
        except GankitError as exc:
            raise gr.Error(str(exc), duration=None) from None

    return call


DISPLAY_SIDE = 512  # small pictures are shown enlarged (nearest neighbour) to about this size


def _shown(result: tools.Result):
    """A result as the page shows it: enlarged picture (downloads keep the real size), files, text."""
    return tools.enlarged(result.image, DISPLAY_SIDE), [str(p) for p in result.files], result.text


def _result_widgets(gr, label: str):
    with gr.Column():
        image = gr.Image(label=label, type="numpy", format="png", interactive=False, elem_classes="result")
        text = gr.Markdown(elem_classes="status")
        files = gr.File(label="Download", file_count="multiple", interactive=False)
    return image, files, text


def _model_tabs(gr, demo, m: tools.Loaded, folder: Path, loaded: dict[str, tools.Loaded]) -> None:
    caps = m.capabilities()
    queue = dict(concurrency_id=f"model-{slug(m.name)}", concurrency_limit=1)
    projected = gr.State(None)  # this browser session's projected photo (ws), for edit and toonify
    if "sample" in caps:
        _sample_tab(gr, demo, m, folder, queue)
    if "walk" in caps:
        _walk_tab(gr, m, folder, queue)
    if "mix" in caps:
        _mix_tab(gr, m, folder, queue)
    if "edit" in caps:
        _edit_tab(gr, m, folder, queue, projected)
    if "project" in caps:
        _project_tab(gr, m, folder, queue, projected)
    partners = [o for o in loaded.values() if o is not m and o.family.style_based
                and o.model.config.resolution == m.model.config.resolution]
    if m.family.style_based and partners:
        _toonify_tab(gr, m, partners, folder, queue, projected)
    if "arithmetic" in caps:
        _arithmetic_tab(gr, m, folder, queue)
    if "harmonize" in caps:
        _harmonize_tab(gr, m, folder, queue)
    if "paint" in caps:
        _paint_tab(gr, m, folder, queue)
    if "translate" in caps:
        _translate_tab(gr, m, folder, queue)
    if "upscale" in caps:
        _upscale_tab(gr, m, folder, queue)
    with gr.Tab("Run"):
        page = gr.HTML(_framed(m))
        gr.Button("Refresh", size="sm").click(lambda: _framed(m), outputs=page, **queue)


def _framed(m: tools.Loaded) -> str:
    """The run page inside an iframe, so its own styles stay its own."""
    return (f'<iframe class="run-page" title="run page of {escape(m.name)}" style="width:100%;height:80vh;border:0" '
            f'srcdoc="{escape(tools.run_page(m), quote=True)}"></iframe>')


def _truncation_slider(gr, m: tools.Loaded):
    if m.family.single_image:
        return gr.State(None)
    if m.family.truncation_space == "w":
        return gr.Slider(-1.0, 2.0, value=1.0, step=0.05, label="truncation psi (1 = off, 0 = the average)")
    return gr.Slider(0.0, 3.0, value=0.0, step=0.05, label="truncation t (0 = off; lower = safer, less varied)")


def _condition_inputs(gr, m: tools.Loaded):
    label = (gr.Dropdown(["random", *tools.class_names(m)], value="random", label="class")
             if m.model.num_classes and not m.family.takes_text else gr.State(None))
    config = m.model.config
    caption = (gr.Textbox(value=(config.sample_captions or [""])[0], label="caption", max_length=300)
               if m.family.takes_text else gr.State(None))
    return label, caption


def _sample_tab(gr, demo, m, folder, queue):
    with gr.Tab("Sample"), gr.Row():
        with gr.Column(scale=1):
            seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_classes="seed")
            n = gr.Slider(1, tools.MAX_SAMPLES, value=8, step=1, label="samples")
            psi = _truncation_slider(gr, m)
            label, caption = _condition_inputs(gr, m)
            go = gr.Button("Sample", variant="primary")
        image, files, text = _result_widgets(gr, "samples")
    run = _guarded(gr, lambda s, k, t, c, cap: _shown(tools.sample(m, seed=s, n=k, truncation=t, label=c, caption=cap,
                                                                   folder=folder)))
    ins, outs = [seed, n, psi, label, caption], [image, files, text]
    go.click(run, ins, outs, api_name=f"{slug(m.name)}_sample", **queue)
    seed.submit(run, ins, outs, **queue)
    demo.load(run, ins, outs, **queue)  # pictures as soon as the page opens
    _live(run, ins, outs, queue, n, psi)


def _live(fn, ins, outs, queue, *sliders) -> None:
    """Re-run ``fn`` whenever a slider moves; while one runs, only the latest value waits
    (``always_last``), so dragging does not pile up requests."""
    for slider in sliders:
        if type(slider).__name__ != "State":  # not a gr.State standing in for a missing control
            slider.change(fn, ins, outs, trigger_mode="always_last", **queue)


def _walk_tab(gr, m, folder, queue):
    with gr.Tab("Latent walk"), gr.Row():
        with gr.Column(scale=1):
            seed = gr.Number(0, precision=0, minimum=0, label="seed")
            keys = gr.Slider(2, 8, value=4, step=1, label="keyframes")
            frames = gr.Slider(8, tools.MAX_FRAMES, value=48, step=8, label="frames")
            fps = gr.Slider(4, 30, value=12, step=1, label="frames per second")
            psi = _truncation_slider(gr, m)
            label, caption = _condition_inputs(gr, m)
            go = gr.Button("Walk", variant="primary")
        with gr.Column():
            video = gr.Video(label="walk", autoplay=True, loop=True, interactive=False)
            text = gr.Markdown(elem_classes="status")
            files = gr.File(label="Download", file_count="multiple", interactive=False)

    def run(s, k, f, r, t, c, cap):
        result = tools.walk(m, seed=s, keyframes=k, frames=f, fps=r, truncation=t, label=c, caption=cap, folder=folder)
        return str(result.video), [str(p) for p in result.files], result.text

    go.click(_guarded(gr, run), [seed, keys, frames, fps, psi, label, caption], [video, files, text], **queue)


def _mix_tab(gr, m, folder, queue):
    last = m.model.num_ws - 1
    with gr.Tab("Style mixing"), gr.Row():
        with gr.Column(scale=1):
            row = gr.Number(0, precision=0, minimum=0, label="seed (keeps the other layers)")
            col = gr.Number(1, precision=0, minimum=0, label="seed (gives its styles)")
            first = gr.Slider(0, last, value=0, step=1, label="from layer (0 = coarsest, 4 px)")
            upto = gr.Slider(0, last, value=min(3, last), step=1, label="to layer")
            psi = gr.Slider(-1.0, 2.0, value=1.0, step=0.05, label="truncation psi")
            go = gr.Button("Mix", variant="primary")
        image, files, text = _result_widgets(gr, "seed | seed | mixed")
    run = _guarded(gr, lambda a, b, f, u, t: _shown(tools.mix(m, row_seed=a, col_seed=b, first=f, last=u, truncation=t,
                                                              folder=folder)))
    ins, outs = [row, col, first, upto, psi], [image, files, text]
    go.click(run, ins, outs, api_name=f"{slug(m.name)}_mix", **queue)
    _live(run, ins, outs, queue, first, upto, psi)


def _edit_tab(gr, m, folder, queue, projected):
    names = m.slider_directions()
    with gr.Tab("Edit"), gr.Row():
        with gr.Column(scale=1):
            source = gr.Radio(["seed", "my projected photo"], value="seed", label="edit")
            seed = gr.Number(0, precision=0, minimum=0, label="seed")
            psi = gr.Slider(-1.0, 2.0, value=0.7, step=0.05, label="truncation psi")
            sliders = [gr.Slider(-5.0, 5.0, value=0.0, step=0.25, label=f"{name} (stds of w)", elem_classes="direction")
                       for name in names]
            reset = gr.Button("Reset sliders", size="sm")
        image, files, text = _result_widgets(gr, "original | edited")

    def run(s, t, src, ws, *values):
        if src != "seed" and ws is None:
            raise GankitError("project a photo first (the Project tab)")
        return _shown(tools.edit(m, dict(zip(names, values)), seed=s, truncation=t, w=None if src == "seed" else ws,
                                 folder=folder))

    ins, outs = [seed, psi, source, projected, *sliders], [image, files, text]
    _live(_guarded(gr, run), ins, outs, queue, psi, source, *sliders)
    seed.submit(_guarded(gr, run), ins, outs, api_name=f"{slug(m.name)}_edit", **queue)
    reset.click(lambda: [0.0] * len(sliders), outputs=sliders)


def _project_tab(gr, m, folder, queue, projected):
    with gr.Tab("Project a photo"), gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="photo (cropped like the training images)", file_types=IMAGE_TYPES,
                             type="filepath", elem_classes="upload")
            steps = gr.Slider(50, 1000, value=200, step=50, label="optimisation steps")
            space = gr.Radio(["w", "w+"], value="w+", label="space (w+: closer, less editable)")
            go = gr.Button("Project", variant="primary")
            gr.Markdown("Then move the sliders of the Edit tab with *my projected photo*, or toonify it.")
        image, files, text = _result_widgets(gr, "photo | reconstruction")

    def run(path, k, sp):
        result, ws = tools.project(m, path, steps=k, space=sp, folder=folder)
        return (*_shown(result), ws)

    go.click(_guarded(gr, run), [upload, steps, space], [image, files, text, projected], **queue)


def _toonify_tab(gr, m, partners, folder, queue, projected):
    sizes = [2 ** i for i in range(2, m.model.config.resolution.bit_length())]
    with gr.Tab("Toonify"), gr.Row():
        with gr.Column(scale=1):
            other = gr.Dropdown([o.name for o in partners], value=partners[0].name, label="fine-tuned model")
            swap = gr.Dropdown(sizes, value=sizes[len(sizes) // 2], label="its layers from (px)")
            source = gr.Radio(["seed", "my projected photo"], value="seed", label="whose face")
            seed = gr.Number(0, precision=0, minimum=0, label="seed")
            go = gr.Button("Blend", variant="primary")
        image, files, text = _result_widgets(gr, "base | fine-tuned | blend")
    by_name = {o.name: o for o in partners}

    def run(name, px, src, ws, s):
        if src != "seed" and ws is None:
            raise GankitError("project a photo first (the Project tab)")
        return _shown(tools.toonify(m, by_name[name], swap=px, seed=s, w=None if src == "seed" else ws, folder=folder))

    ins, outs = [other, swap, source, projected, seed], [image, files, text]
    go.click(_guarded(gr, run), ins, outs, **queue)
    _live(_guarded(gr, run), ins, outs, queue, swap)


def _arithmetic_tab(gr, m, folder, queue):
    with gr.Tab("Arithmetic"), gr.Row():
        with gr.Column(scale=1):
            gr.Markdown("Pick exemplar seeds from the Sample tab (seed S, sample 1): A - B + C, each term the "
                        "mean of its seeds (e.g. man with glasses - man + woman).")
            a, b, c = (gr.Textbox(v, label=k) for k, v in (("A", "1,2,3"), ("B", "4,5,6"), ("C", "7,8,9")))
            label = (gr.Dropdown(tools.class_names(m), value=tools.class_names(m)[0], label="class (held fixed)")
                     if m.model.num_classes else gr.State(None))
            go = gr.Button("Compute", variant="primary")
        image, files, text = _result_widgets(gr, "A, B, C with their means; = variations and the result")
    run = _guarded(gr, lambda x, y, z, k: _shown(tools.arithmetic(m, x, y, z, label=k, folder=folder)))
    go.click(run, [a, b, c, label], [image, files, text], **queue)


def _singan_scale(gr, m):
    from gankit.explore.singan import default_injection_scale, last_scale, pyramid_of

    return gr.Slider(1, last_scale(pyramid_of(m.model)), value=default_injection_scale(m.model), step=1,
                     label="injection scale (lower: more change)")


def _harmonize_tab(gr, m, folder, queue):
    with gr.Tab("Harmonise"), gr.Row():
        with gr.Column(scale=1):
            pasted = gr.File(label="the picture with something pasted in (or edited)", file_types=IMAGE_TYPES,
                             type="filepath", elem_classes="upload")
            mask = gr.File(label="its mask (white where pasted)", file_types=IMAGE_TYPES, type="filepath",
                           elem_classes="upload")
            mode = gr.Radio(["harmonization", "editing"], value="harmonization", label="mode")
            scale, seed = _singan_scale(gr, m), gr.Number(0, precision=0, minimum=0, label="seed")
            go = gr.Button("Harmonise", variant="primary")
        image, files, text = _result_widgets(gr, "input | harmonised")
    run = _guarded(gr, lambda p, k, md, sc, s: _shown(tools.harmonize(m, p, k, start_scale=sc, mode=md, seed=s,
                                                                      folder=folder)))
    go.click(run, [pasted, mask, mode, scale, seed], [image, files, text], **queue)


def _paint_tab(gr, m, folder, queue):
    with gr.Tab("Paint"), gr.Row():
        with gr.Column(scale=1):
            clipart = gr.File(label="a painting of the scene (flat colours)", file_types=IMAGE_TYPES, type="filepath",
                              elem_classes="upload")
            scale, seed = _singan_scale(gr, m), gr.Number(0, precision=0, minimum=0, label="seed")
            go = gr.Button("Paint", variant="primary")
        image, files, text = _result_widgets(gr, "painted")
    run = _guarded(gr, lambda p, sc, s: _shown(tools.paint(m, p, start_scale=sc, seed=s, folder=folder)))
    go.click(run, [clipart, scale, seed], [image, files, text], **queue)


def _translate_tab(gr, m, folder, queue):
    attrs = tools.attribute_names(m)
    with gr.Tab("Translate"), gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="photo", file_types=IMAGE_TYPES, type="filepath", elem_classes="upload")
            direction = (gr.Radio(["AtoB", "BtoA"], value=m.model.config.direction, label="direction")
                         if tools.two_way(m) else gr.State(None))
            on = (gr.CheckboxGroup(attrs, label="turn on (none: one column per attribute flipped)") if attrs
                  else gr.State([]))
            off = gr.CheckboxGroup(attrs, label="turn off") if attrs else gr.State([])
            go = gr.Button("Translate", variant="primary")
        image, files, text = _result_widgets(gr, "input | translated")

    def run(path, d, turn_on, turn_off):
        changes = {**{a: 0.0 for a in turn_off or []}, **{a: 1.0 for a in turn_on or []}}
        return _shown(tools.translate(m, path, direction=d, attrs=changes or None, folder=folder))

    go.click(_guarded(gr, run), [upload, direction, on, off], [image, files, text], **queue)
    upload.upload(_guarded(gr, run), [upload, direction, on, off], [image, files, text], **queue)


def _upscale_tab(gr, m, folder, queue):
    with gr.Tab("Upscale"), gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="picture", file_types=IMAGE_TYPES, type="filepath", elem_classes="upload")
            if m.family.single_image:
                scale = gr.Slider(1.0, 8.0, value=4.0, step=0.5, label="scale")
                seed = gr.Number(0, precision=0, minimum=0, label="seed")
            else:
                scale, seed = gr.State(float(m.model.config.scale)), gr.State(0)
            go = gr.Button("Upscale", variant="primary")
        image, files, text = _result_widgets(gr, "upscaled")
    run = _guarded(gr, lambda p, s, k: _shown(tools.upscale(m, p, scale=s, seed=k, folder=folder)))
    go.click(run, [upload, scale, seed], [image, files, text], **queue)
    upload.upload(run, [upload, scale, seed], [image, files, text], **queue)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def serve(paths: list[str | Path], *, host: str = "127.0.0.1", port: int = 7860, queue_size: int = 32,
          device: str = "cpu", block: bool = True, warn=print):
    """Load the models once and serve the studio; returns the Blocks (launched) when ``block`` is False."""
    if host not in LOCAL_HOSTS:
        warn(f"warning: serving on {host}: anyone who can reach this machine on port {port} can use the studio "
             f"(and its CPU/GPU); the default 127.0.0.1 keeps it to this machine")
    loaded = tools.load_models(paths, device=device)
    demo = build_app(loaded, queue_size=queue_size)
    try:
        demo.launch(server_name=host, server_port=port, share=False, inbrowser=False, max_file_size=MAX_BYTES,
                    allowed_paths=[str(demo.studio_folder)], prevent_thread_lock=not block, quiet=True,
                    show_error=True, theme=demo.studio_theme)
    except OSError as exc:
        shutil.rmtree(demo.studio_folder, ignore_errors=True)
        raise GankitError(f"cannot serve on {host}:{port}: {exc}") from None
    return demo
