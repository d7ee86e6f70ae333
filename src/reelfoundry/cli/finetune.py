"""``reelfoundry finetune``: train a LoRA adapter of a model on a collection and register it as a model."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from reelfoundry.cli.common import AsJson, client, common_options, console, emit, progress


@common_options()
def finetune(
    name: Annotated[str, typer.Option("--name", help="The model id the fine-tune registers.")],
    collection: Annotated[str, typer.Option("--collection", help="Collection id to train on.")],
    base: Annotated[str, typer.Option("--base", help="The model whose adapter is trained.")] = "builtin",
    rank: Annotated[int, typer.Option("--rank", min=1, max=128, help="LoRA rank.")] = 8,
    steps: Annotated[int, typer.Option("--steps", min=1, max=20000, help="Optimiser steps.")] = 300,
    lr: Annotated[float, typer.Option("--lr", min=0.0, max=1.0, help="Learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the run.")] = 0,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow progress until it ends.")] = True,
    as_json: AsJson = False,
) -> None:
    """Fine-tune BASE on the collection's approved, training-allowed assets; NAME becomes a model requests can
    name. Needs a tenant admin's key; prints the fine-tune (and follows its job's progress with --wait)."""
    api = client()
    body = {"name": name, "base": base, "collection": collection, "rank": rank, "steps": steps, "lr": lr, "seed": seed}
    created: dict[str, Any] = api.json("POST", "/v1/finetunes", json=body)
    if not as_json:
        console.print(
            f"fine-tune {created['id']} of {base} on {len(created['assets_used'])} assets queued", highlight=False
        )
    if not wait:
        emit(created, as_json, f"queued fine-tune {created['id']} (job {created['job_id']})")
        return
    with progress() as bar:
        task = bar.add_task(f"fine-tune {name} queued", total=None)

        def show(ev: dict[str, Any]) -> None:
            if ev["type"] == "job.progress":
                step, total = ev["data"]["step"], ev["data"]["total"]
                bar.update(task, description=f"fine-tune {name} step", completed=step, total=total)
            elif ev["type"] in ("job.running", "job.requeued", "job.cancel_requested"):
                bar.update(task, description=f"fine-tune {name} {ev['type'].split('.')[1]}")

        api.wait(created["job_id"], show)
    done: dict[str, Any] = api.json("GET", f"/v1/finetunes/{created['id']}")
    err = f": {done['error']['detail']}" if done.get("error") else ""
    sha = done["adapter_sha256"]
    tail = f"; model {name} registered (adapter sha256 {sha[:12]}…)" if sha else ""
    emit(done, as_json, f"fine-tune {done['id']} {done['state']}{tail}{err}")
    if done["state"] != "succeeded":
        raise typer.Exit(1)
