"""The fleet: worker slots with a device class, a price from the catalog and free device memory.

Fleet YAML::

    nodes:
      - {name: h100, count: 4, device: H100, provider: aws, pricing_model: on-demand, region: us-east-1}
      - {name: mig, count: 1, device: A100-80GB, provider: coreweave, pricing_model: on-demand,
         partition: 1g.10gb}          # the node offers as many 1g.10gb slices as fit (7)

A node's ``count`` devices each cost the catalog's $/device-hour, whether busy or not. A MIG
partition ``<k>g.<m>gb`` cuts each device into ``7 // k`` slices of ``m`` GiB and ``k/7`` of its
compute; a slice is priced at ``k/7`` of the device for the scheduler's cost comparisons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from reelfoundry.errors import InvalidParameter
from reelfoundry.finops.catalog import Catalog, load_catalog
from reelfoundry.scheduling.profiles import DEVICE_MEMORY_GIB, DEVICE_SPEED

_MIG = re.compile(r"^(?P<slices>[1-7])g\.(?P<gb>\d+)gb$")
#: Devices that can be MIG-partitioned.
MIG_DEVICES = ("A100-40GB", "A100-80GB", "H100", "H200")
_FIELDS = ("name", "count", "device", "provider", "pricing_model", "region", "partition")


@dataclass(frozen=True)
class SlotType:
    """One kind of worker slot: a whole device or a MIG slice of one, and what it costs."""

    device: str
    partition: str | None
    memory_gib: float
    #: Fraction of the device's compute (1 for a whole device, k/7 for a MIG slice).
    share: float
    provider: str
    pricing_model: str
    region: str
    #: Catalog price of the whole device.
    usd_per_device_hour: Decimal

    @property
    def usd_per_hour(self) -> float:
        """What this slot's share of the device costs per hour."""
        return float(self.usd_per_device_hour) * self.share

    @property
    def label(self) -> str:
        """Device class and partition, e.g. ``H100`` or ``A100-80GB/1g.10gb``."""
        return f"{self.device}/{self.partition}" if self.partition else self.device


@dataclass(frozen=True)
class Slot:
    """One schedulable worker: a whole device or one MIG slice, on a named node."""

    name: str
    node: str
    type: SlotType


@dataclass(frozen=True)
class Node:
    """A line of the fleet file: ``count`` identical devices."""

    name: str
    count: int
    type: SlotType
    slices_per_device: int


@dataclass(frozen=True)
class Fleet:
    """The provisioned devices and the slots they offer."""

    nodes: tuple[Node, ...]
    slots: tuple[Slot, ...]

    @property
    def devices(self) -> int:
        """Physical devices provisioned (a MIG-partitioned GPU counts once)."""
        return sum(n.count for n in self.nodes)

    @property
    def usd_per_hour(self) -> Decimal:
        """What the whole fleet costs per hour, busy or idle."""
        return sum((n.type.usd_per_device_hour * n.count for n in self.nodes), Decimal(0))


def _mig(partition: str, device: str, where: str) -> tuple[int, float, int]:
    """(compute slices out of 7, GiB per slice, slices per device) of a MIG profile on a device."""
    match = _MIG.match(partition.strip().lower())
    if not match:
        raise InvalidParameter(
            "partition", f"{where}: field 'partition': {partition!r} is not a MIG profile like 3g.40gb"
        )
    if device not in MIG_DEVICES:
        raise InvalidParameter(
            "partition", f"{where}: field 'partition': {device} has no MIG; MIG devices: {', '.join(MIG_DEVICES)}"
        )
    slices, gib = int(match["slices"]), float(match["gb"])
    if gib > DEVICE_MEMORY_GIB[device] + 1:
        raise InvalidParameter(
            "partition",
            f"{where}: field 'partition': {partition} needs {gib:g} GB; {device} has {DEVICE_MEMORY_GIB[device]:g}",
        )
    return slices, gib, 7 // slices


def make_node(entry: dict[str, Any], where: str = "node", catalog: Catalog | None = None) -> Node:
    """One fleet node from its YAML mapping; InvalidParameter naming ``where`` and the field."""
    catalog = catalog or load_catalog()
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise InvalidParameter(unknown[0], f"{where}: unknown field {unknown[0]!r}; fields: {', '.join(_FIELDS)}")
    for key in ("name", "count", "device", "provider", "pricing_model"):
        if key not in entry:
            raise InvalidParameter(key, f"{where}: field {key!r} is missing")
    for key in ("name", "device", "provider", "pricing_model", "region", "partition"):
        if key in entry and entry[key] is not None and not isinstance(entry[key], str):
            raise InvalidParameter(key, f"{where}: field {key!r} must be a string, got {entry[key]!r}")
    count = entry["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidParameter("count", f"{where}: field 'count' must be a positive integer, got {count!r}")
    device = entry["device"]
    if device not in DEVICE_SPEED:
        raise InvalidParameter(
            "device", f"{where}: field 'device': unknown device class {device!r}; known: {', '.join(DEVICE_SPEED)}"
        )
    try:
        price = catalog.device_price(entry["provider"], device, entry["pricing_model"], entry.get("region"))
    except InvalidParameter as exc:
        field = {"worker_device": "device", "worker_pricing_model": "pricing_model", "worker_region": "region"}
        name = field.get(exc.parameter, exc.parameter)
        raise InvalidParameter(name, f"{where}: field {name!r}: {exc.detail}") from None
    partition = entry.get("partition")
    if partition:
        slices, gib, per_device = _mig(partition, device, where)
        share = slices / 7
    else:
        gib, per_device, share = DEVICE_MEMORY_GIB[device], 1, 1.0
    slot_type = SlotType(
        device=device,
        partition=partition or None,
        memory_gib=gib,
        share=share,
        provider=price.provider,
        pricing_model=price.pricing_model,
        region=price.region,
        usd_per_device_hour=price.usd_per_device_hour,
    )
    return Node(name=entry["name"], count=count, type=slot_type, slices_per_device=per_device)


def fleet_from_nodes(nodes: list[Node]) -> Fleet:
    """A fleet offering every slot of its nodes, named ``<node>-<device index>[.<slice>]``."""
    names = [n.name for n in nodes]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise InvalidParameter("name", f"fleet: node name {duplicate!r} is used twice")
    slots = []
    for node in nodes:
        for i in range(node.count):
            for s in range(node.slices_per_device):
                suffix = f".{s}" if node.slices_per_device > 1 or node.type.partition else ""
                slots.append(Slot(name=f"{node.name}-{i}{suffix}", node=node.name, type=node.type))
    return Fleet(nodes=tuple(nodes), slots=tuple(slots))


def parse_fleet(text: str, source: str = "fleet") -> Fleet:
    """A fleet from YAML text; errors name ``source``, the line and the field."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidParameter("fleet", f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or "nodes" not in data:
        raise InvalidParameter("nodes", f"{source}: line 1: field 'nodes' is missing (a list of nodes)")
    items = data["nodes"]
    if not isinstance(items, list) or not items:
        raise InvalidParameter("nodes", f"{source}: field 'nodes' must be a non-empty list")
    node_marks = []
    for key_node, value_node in root.value:
        if key_node.value == "nodes":
            node_marks = [item.start_mark.line + 1 for item in value_node.value]
    catalog = load_catalog()
    nodes = []
    for i, entry in enumerate(items):
        where = f"{source}: line {node_marks[i] if i < len(node_marks) else '?'} (nodes[{i}])"
        if not isinstance(entry, dict):
            raise InvalidParameter("nodes", f"{where}: a node must be a mapping, got {entry!r}")
        nodes.append(make_node(entry, where, catalog))
    return fleet_from_nodes(nodes)


def load_fleet(path: str | Path) -> Fleet:
    """A fleet from a YAML file (see the module docstring for the format)."""
    p = Path(path)
    return parse_fleet(p.read_text(encoding="utf-8"), str(p))
