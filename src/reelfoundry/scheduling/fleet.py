"""The fleet: worker slots with a device class, a price from the catalog and free device memory.

Fleet YAML::

    autoscale: {idle_timeout_s: 300, startup_s: 300, backlog_s: 900, min_fill: 0.5}   # optional; the defaults
    nodes:
      - {name: h100, count: 4, device: H100, provider: aws, pricing_model: on-demand, region: us-east-1}
      - {name: mig, count: 1, device: A100-80GB, provider: coreweave, pricing_model: on-demand,
         partition: 1g.10gb}          # the node offers as many 1g.10gb slices as fit (7)
      - {name: base, count: 2, device: L40S, provider: aws, pricing_model: on-demand, min_count: 1}

A node's ``count`` devices each cost the catalog's $/device-hour for as long as they are held. A MIG
partition ``<k>g.<m>gb`` cuts each device into ``7 // k`` slices of ``m`` GiB and ``k/7`` of its
compute; a slice is priced at ``k/7`` of the device for the scheduler's cost comparisons.

Right-sizing: devices priced ``on-demand``, ``on-demand-1x`` or ``spot`` are *elastic*: a scheduler that
autoscales may release one that has been idle ``idle_timeout_s`` and acquire it again when the queue needs
it, paying ``startup_s`` (booting, loading the model) before it takes work; billing counts only the time a
device is held, start-up included. ``min_count`` devices of a node (default 0) are never released.
``reserved``, ``capacity-block`` and on-premises (``local``) devices are paid for whether used or not, so
they are always held. ``count`` is the most a node can hold.
"""

from __future__ import annotations

import functools
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
_FIELDS = ("name", "count", "device", "provider", "pricing_model", "region", "partition", "min_count")
_AUTOSCALE_FIELDS = ("idle_timeout_s", "startup_s", "backlog_s", "min_fill")
#: Pricing models billed only while a device is held: an autoscaler may release and re-acquire these devices.
ELASTIC_PRICING = ("on-demand", "on-demand-1x", "spot")


@dataclass(frozen=True)
class Autoscale:
    """When an autoscaling scheduler releases and acquires elastic devices (see :func:`~.policy.autoscale`)."""

    #: A held device idle this long is released. The default equals ``startup_s``: the rent-or-buy break-even
    #: (waiting as long as a re-acquisition would cost never pays more than twice the best choice in hindsight).
    idle_timeout_s: float = 300.0
    #: Seconds from acquiring a device to its first job (boot, image pull, model load); billed. An assumption:
    #: five minutes for a cloud GPU instance; a warm pool or a cached image is quicker.
    startup_s: float = 300.0
    #: Devices are acquired when the queued work would keep the held ones busy longer than this.
    backlog_s: float = 900.0
    #: A device is acquired only for work filling at least this share of its ``backlog_s`` (unless no
    #: held device can run the work at all).
    min_fill: float = 0.5


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
    #: The physical device the slot is on (its name: ``<node>-<index>``); empty = the slot's own name.
    unit: str = ""

    @property
    def device_name(self) -> str:
        """The physical device the slot is on."""
        return self.unit or self.name


@dataclass(frozen=True)
class Node:
    """A line of the fleet file: ``count`` identical devices."""

    name: str
    count: int
    type: SlotType
    slices_per_device: int
    #: Devices never released (all of them unless the pricing model is elastic).
    min_count: int = 0

    @property
    def elastic(self) -> bool:
        """Whether its devices are billed only while held (on-demand or spot, not on premises)."""
        return self.type.pricing_model in ELASTIC_PRICING and self.type.provider != "local"


@dataclass(frozen=True)
class Unit:
    """One physical device of the fleet and the slots it offers (one, or its MIG slices)."""

    name: str
    node: str
    type: SlotType
    slots: tuple[str, ...]
    #: Whether an autoscaler may release it (its node is elastic).
    elastic: bool


@dataclass(frozen=True)
class Fleet:
    """The provisioned devices and the slots they offer."""

    nodes: tuple[Node, ...]
    slots: tuple[Slot, ...]
    autoscale: Autoscale = Autoscale()

    @property
    def devices(self) -> int:
        """Physical devices provisioned (a MIG-partitioned GPU counts once)."""
        return sum(n.count for n in self.nodes)

    @functools.cached_property
    def units(self) -> tuple[Unit, ...]:
        """The physical devices, in fleet order, with their slots."""
        nodes = {n.name: n for n in self.nodes}
        slots: dict[str, list[Slot]] = {}
        for slot in self.slots:
            slots.setdefault(slot.device_name, []).append(slot)
        return tuple(
            Unit(name, group[0].node, group[0].type, tuple(s.name for s in group), nodes[group[0].node].elastic)
            for name, group in slots.items()
        )

    @functools.cached_property
    def unit_of(self) -> dict[str, Unit]:
        """Slot name → the device it is on."""
        return {slot: unit for unit in self.units for slot in unit.slots}

    @functools.cached_property
    def units_by_name(self) -> dict[str, Unit]:
        """Device name → the device."""
        return {unit.name: unit for unit in self.units}

    @property
    def elastic(self) -> bool:
        """Whether any device can be released (an autoscaler has something to do)."""
        return any(n.elastic and n.count > n.min_count for n in self.nodes)

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
    min_count = entry.get("min_count", 0)
    if isinstance(min_count, bool) or not isinstance(min_count, int) or not 0 <= min_count <= count:
        raise InvalidParameter(
            "min_count", f"{where}: field 'min_count' must be an integer from 0 to count ({count}), got {min_count!r}"
        )
    return Node(name=entry["name"], count=count, type=slot_type, slices_per_device=per_device, min_count=min_count)


def parse_autoscale(entry: Any, where: str = "autoscale") -> Autoscale:
    """Autoscale settings from a mapping; InvalidParameter naming ``where`` and the field."""
    if entry is None:
        return Autoscale()
    if not isinstance(entry, dict):
        raise InvalidParameter("autoscale", f"{where}: field 'autoscale' must be a mapping, got {entry!r}")
    unknown = sorted(set(entry) - set(_AUTOSCALE_FIELDS))
    if unknown:
        raise InvalidParameter(
            unknown[0], f"{where}: unknown field {unknown[0]!r}; fields: {', '.join(_AUTOSCALE_FIELDS)}"
        )
    for key, value in entry.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InvalidParameter(key, f"{where}: field {key!r} must be a number >= 0, got {value!r}")
    settings = Autoscale(**{k: float(v) for k, v in entry.items()})
    if settings.backlog_s <= settings.startup_s:
        raise InvalidParameter(
            "backlog_s",
            f"{where}: field 'backlog_s' ({settings.backlog_s:g}) must exceed startup_s ({settings.startup_s:g}): "
            "a device acquired for the backlog must have time to work on it",
        )
    if settings.min_fill > 1:
        raise InvalidParameter("min_fill", f"{where}: field 'min_fill' must be at most 1, got {settings.min_fill:g}")
    return settings


def fleet_from_nodes(nodes: list[Node], autoscale: Autoscale | None = None) -> Fleet:
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
                unit = f"{node.name}-{i}"
                slots.append(Slot(name=f"{unit}{suffix}", node=node.name, type=node.type, unit=unit))
    return Fleet(nodes=tuple(nodes), slots=tuple(slots), autoscale=autoscale or Autoscale())


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
    unknown = sorted(set(data) - {"nodes", "autoscale"})
    if unknown:
        raise InvalidParameter(
            unknown[0], f"{source}: unknown top-level field {unknown[0]!r}; fields: nodes, autoscale"
        )
    node_marks = []
    autoscale_line = 1
    for key_node, value_node in root.value:
        if key_node.value == "nodes":
            node_marks = [item.start_mark.line + 1 for item in value_node.value]
        if key_node.value == "autoscale":
            autoscale_line = key_node.start_mark.line + 1
    autoscale = parse_autoscale(data.get("autoscale"), f"{source}: line {autoscale_line} (autoscale)")
    catalog = load_catalog()
    nodes = []
    for i, entry in enumerate(items):
        where = f"{source}: line {node_marks[i] if i < len(node_marks) else '?'} (nodes[{i}])"
        if not isinstance(entry, dict):
            raise InvalidParameter("nodes", f"{where}: a node must be a mapping, got {entry!r}")
        nodes.append(make_node(entry, where, catalog))
    return fleet_from_nodes(nodes, autoscale)


def load_fleet(path: str | Path) -> Fleet:
    """A fleet from a YAML file (see the module docstring for the format)."""
    p = Path(path)
    return parse_fleet(p.read_text(encoding="utf-8"), str(p))
