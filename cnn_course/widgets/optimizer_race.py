"""The optimizer race of Chapter 6: trajectories on 2-D loss surfaces, with live controls.

Every trajectory is a real ``torch.optim`` run on the surface
(:mod:`cnn_course.lessons.optimizers`); the widget only chooses the settings and draws.
"""

from __future__ import annotations

import html

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display

from cnn_course.figure_translation import figure_tr, figure_translated, set_title, use_cjk_font
from cnn_course.lessons.optimizers import (
    ADAPTIVE,
    SUGGESTED,
    SURFACES,
    Trajectory,
    draw_trajectories,
    race,
    torch_optimizers,
)
from cnn_course.messages import N_, tr, translated

OPTIMIZERS = ("SGD", N_("momentum"), "Nesterov", "Adagrad", "RMSprop", "Adam")
SURFACE_NAMES = {"ravine": N_("ravine"), "saddle": N_("saddle"), "rosenbrock": N_("rosenbrock")}


class OptimizerRace:
    """Controls for the race, a contour plot of every path, and one plain sentence per run.

    ``race.controls[name].value = ...`` drives it from code; ``race.trajectories`` holds the
    latest runs and ``race.summary.value`` the text shown. Choosing a surface loads learning
    rates that suit it (``cnn_course.lessons.optimizers.SUGGESTED``).
    """

    def __init__(self, surface: str = "ravine") -> None:
        if surface not in SURFACES:
            raise ValueError(tr("unknown surface {surface!r}; choose one of {names}",
                                surface=surface, names=", ".join(map(repr, SURFACES))))
        suggested = SUGGESTED[surface]
        slider = dict(continuous_update=False, style={"description_width": "170px"},
                      layout=W.Layout(width="420px"))
        self.controls: dict[str, W.ValueWidget] = {
            "surface": W.Dropdown(options=[(translated(SURFACE_NAMES.get(name, name)), name)
                                           for name in SURFACES],
                                  value=surface, description=tr("surface"),
                                  style={"description_width": "170px"}),
            "lr": W.FloatLogSlider(suggested["lr"], base=10, min=-4, max=0, step=0.1,
                                   readout_format=".4f",
                                   description=tr("lr (SGD, momentum, Nesterov)"), **slider),
            "adaptive_lr": W.FloatLogSlider(suggested["adaptive_lr"], base=10, min=-4, max=0,
                                            step=0.1, readout_format=".4f",
                                            description=tr("lr (Adagrad, RMSprop, Adam)"),
                                            **slider),
            "momentum": W.FloatSlider(suggested["momentum"], min=0.0, max=0.99, step=0.01,
                                      description=tr("momentum μ"), **slider),
            "steps": W.IntSlider(suggested["steps"], min=10, max=500, step=10,
                                 description=tr("steps"), **slider),
            "shown": W.SelectMultiple(options=[(tr(name), name) for name in OPTIMIZERS],
                                      value=OPTIMIZERS, rows=6, description=tr("optimizers"),
                                      style={"description_width": "80px"}),
        }
        self.summary = W.HTML()
        self.plot = W.Output()
        self.trajectories: dict[str, Trajectory] = {}
        self._updating = False
        for name, control in self.controls.items():
            control.observe(self._on_surface if name == "surface" else self._on_change,
                            names="value")
        c = self.controls
        self.widget = W.VBox([
            W.HBox([W.VBox([c["surface"], c["lr"], c["adaptive_lr"], c["momentum"],
                            c["steps"]]), c["shown"]]),
            W.HBox([self.plot, self.summary]),
        ])
        self.update()

    def _ipython_display_(self) -> None:
        display(self.widget)

    def _on_change(self, change: dict) -> None:
        if not self._updating:
            self.update()

    def _on_surface(self, change: dict) -> None:
        self._updating = True
        try:
            for name, value in SUGGESTED[change["new"]].items():
                self.controls[name].value = value
        finally:
            self._updating = False
        self.update()

    def update(self) -> None:
        """Rerun every shown optimizer from the surface's start point and redraw."""
        v = {name: control.value for name, control in self.controls.items()}
        surface = SURFACES[v["surface"]]
        optimizers = torch_optimizers(v["lr"], v["momentum"], v["adaptive_lr"])
        chosen = {name: make for name, make in optimizers.items() if name in v["shown"]}
        self.trajectories = race(surface, chosen, v["steps"])
        rows = []
        for name, path in self.trajectories.items():
            lr = v["adaptive_lr"] if name in ADAPTIVE else v["lr"]
            fields = dict(name=f"<b>{tr(name)}</b>", lr=f"{lr:.4g}",
                          outcome=html.escape(path.describe(surface)))
            if path.diverged_at is None:
                row = tr("{name} (lr {lr}): {outcome}.", **fields)
            else:
                row = tr("{name} (lr {lr}): {outcome}. Try a smaller learning rate.", **fields)
            rows.append(f"<li>{row}</li>")
        # The surface's description and each run's outcome are Chapter 6's own sentences
        # (cnn_course.lessons.optimizers): shown translated where its catalog has them.
        title = tr("{surface}: {description}",
                   surface=f"<b>{html.escape(self._name(surface))}</b>",
                   description=html.escape(translated(surface.description)))
        self.summary.value = (f"<div class='optimizer-race-summary'>{title}<ul>{''.join(rows)}"
                              "</ul></div>")
        self.plot.clear_output(wait=True)
        with self.plot:
            fig, ax = plt.subplots(figsize=(5.2, 4.2))
            draw_trajectories(ax, surface, self.trajectories)
            legend = ax.get_legend()
            for text in legend.get_texts() if legend is not None else ():
                text.set_text(figure_translated(text.get_text()))   # "momentum"
                use_cjk_font(text)
            set_title(ax, figure_tr("{surface}, {steps} steps",
                                    surface=figure_translated(SURFACE_NAMES[v["surface"]]),
                                    steps=v["steps"]), fontsize=10)
            fig.tight_layout()
            display(fig)
            plt.close(fig)


    @staticmethod
    def _name(surface) -> str:
        """The surface's name in the reader's language."""
        return translated(SURFACE_NAMES.get(surface.name, surface.name))


def race_optimizers(surface: str = "ravine") -> OptimizerRace:
    """Show the race in a notebook."""
    return OptimizerRace(surface)
