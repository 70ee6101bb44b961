"""The report of `hwsim.profile` (docs/profile.md): a network's energy per layer and
component, latency, area, spike rates and accuracy on a chip, as a DataFrame (`to_frame`) and
rich tables (`table`, and the whole report when a rich console prints it)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from rich.console import Group
from rich.table import Table

from hwsim.model.graph import FC_HEAD
from hwsim.report.labels import fmt_energy, fmt_time, network_label
from hwsim.results import ProfileResult


def head_name(head: int | None) -> str:
    """A classifier head in tables: "fc", "ic4"; "" for the backbone."""
    if head is None:
        return ""
    return "fc" if head == FC_HEAD else f"ic{head}"


@dataclass(frozen=True)
class ProfileReport(ProfileResult):
    """`ProfileResult` with its rich tables: `summary_table`, `table` (per layer), and both
    when a rich console prints it."""

    @classmethod
    def of(cls, result: ProfileResult) -> ProfileReport:
        return cls(**{f.name: getattr(result, f.name) for f in fields(result)})

    def summary_table(self) -> Table:
        """The headline numbers: energy, latency, area, accuracy per head."""
        table = Table(title=f"{network_label(self.spec)} on {self.arch.name}", show_header=False)
        table.add_column("quantity")
        table.add_column("value", justify="right")
        table.add_row("simulated", f"{self.images} images x {self.timesteps} steps")
        table.add_row("energy per inference", fmt_energy(self.energy_pj))
        for name, pj in self.energy_per_component_pj().items():
            if pj:
                table.add_row(f"  {name}", fmt_energy(pj))
        table.add_row("latency (analytic)", f"{self.latency_cycles:,} cycles")
        table.add_row("", fmt_time(self.latency_ns))
        table.add_row("area", f"{self.area_mm2:.3f} mm^2")
        for head, acc in (self.accuracy or {}).items():
            table.add_row(f"accuracy {head_name(head)} at T", f"{100 * acc:.1f} %")
        return table

    def table(self) -> Table:
        """One row per layer: head, spike rate (%), energy per inference and its share (%),
        stage cycles."""
        frame = self.to_frame()
        total = float(frame["energy_pj"].sum()) or 1.0
        table = Table(title="per layer, per inference (one image)")
        for col in ("layer", "head", "spike rate %", "energy", "share %", "cycles"):
            table.add_column(col, justify="left" if col == "layer" else "right", no_wrap=True)
        for row in frame.itertuples(index=False):
            head = None if pd.isna(row.head) else int(row.head)
            rate = "-" if np.isnan(row.spike_rate) else f"{100 * row.spike_rate:.2f}"
            table.add_row(
                row.layer,
                head_name(head),
                rate,
                fmt_energy(row.energy_pj),
                f"{100 * row.energy_pj / total:.1f}",
                f"{row.stage_cycles:,.0f}",
            )
        return table

    def __rich__(self) -> Group:
        return Group(self.summary_table(), self.table())
