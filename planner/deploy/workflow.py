"""``hetplan deploy`` from inputs to changes: every input checked before the first AWS call that changes anything."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from hetplan.errors import HetplanError
from hetplan.planner.deploy.aws import Clients, aws_errors, connect, error_code
from hetplan.planner.deploy.changes import Change, diff, teardown_changes
from hetplan.planner.deploy.desired import (Desired, Resource, Settings, check_name, default_name, desired_state, option_key, plan_hash,
                                            used_options)
from hetplan.planner.deploy.kinds import Context
from hetplan.planner.deploy.observed import Found, observe
from hetplan.planner.deploy.routes import window_routes
from hetplan.planner.deploy.steps import Timeline

MAX_ZIP_BYTES = 50 * 1024 * 1024  # Lambda's limit for a package uploaded directly (not through S3)


@dataclass(frozen=True)
class Request:
    """The command's options, as given."""

    plan: Path
    name: str | None = None
    start: str | None = None
    image_id: str | None = None
    key_name: str | None = None
    subnet_ids: tuple[str, ...] = ()
    lambda_zip: Path | None = None
    lambda_role: str | None = None
    lambda_runtime: str = "python3.11"
    lambda_handler: str = "handler.handler"
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    apply_window: str | None = None
    teardown: bool = False


@dataclass
class Prepared:
    name: str
    digest: str
    clients: Clients
    found: dict[tuple[str, str], Found]
    changes: list[Change]
    context: Context
    desired: Desired | None = None  # None for a teardown
    window: int | None = None  # the window whose weights the load balancer gets


def read_zip(path: Path) -> tuple[bytes, str]:
    """The package's bytes and its SHA-256 as Lambda reports it (base64)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise HetplanError(f"--lambda-zip '{path}' does not exist: build the function's package (a .zip) first") from None
    except OSError as exc:
        raise HetplanError(f"cannot read --lambda-zip '{path}': {exc.strerror or exc}") from None
    if not zipfile.is_zipfile(path):
        raise HetplanError(f"--lambda-zip '{path}' is not a zip file: give the function's deployment package (.zip)")
    if len(data) > MAX_ZIP_BYTES:
        raise HetplanError(f"--lambda-zip '{path}' is {len(data) / 2**20:.0f} MB, over Lambda's 50 MB for a direct upload")
    return data, base64.b64encode(hashlib.sha256(data).digest()).decode()


def parse_start(text: str) -> dt.datetime:
    """An ISO 8601 time; without a zone it is UTC."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise HetplanError(f"--start '{text}' is not an ISO time: write e.g. 2027-01-05T08:00:00Z") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)


def prepare(request: Request, now: dt.datetime | None = None) -> Prepared:
    """The plan read, the inputs checked, AWS observed and the changes listed; nothing changed yet."""
    from hetplan.planner.optimize.plan import load_plan

    now = now or dt.datetime.now(dt.timezone.utc)
    plan = load_plan(request.plan)
    digest = plan_hash(request.plan.read_bytes())
    name = check_name(request.name or default_name(digest))
    start = parse_start(request.start) if request.start else None
    code = read_zip(request.lambda_zip) if request.lambda_zip is not None else (None, None)
    clients = connect(request.region, request.profile, request.endpoint_url)
    found = observe(clients, name)
    context = Context(clients, name, digest, code[0])
    if request.teardown:
        return Prepared(name, digest, clients, found, teardown_changes(found), context)
    balancer = found.get(("load-balancer", name))
    recorded = parse_start(balancer.spec["start"]) if balancer is not None and balancer.spec.get("start") else None
    if request.apply_window is not None:
        return _apply_window(request, plan, name, digest, clients, found, context, start or recorded, now)
    if start is None:
        start = recorded
        if start is None:
            raise HetplanError("give --start: the wall time (ISO, UTC) at which the plan's first window begins, e.g. 2027-01-05T08:00:00Z")
    elif start <= now and start != recorded:
        raise HetplanError(f"--start {request.start} is in the past (now {now:%Y-%m-%dT%H:%M:%SZ}): give a future time; "
                           "a running deployment keeps the start it was deployed with")
    subnets, vpc = resolve_subnets(clients, request.subnet_ids)
    settings = Settings(name=name, start=start, now=now, subnets=subnets, vpc_id=vpc, image_id=request.image_id,
                        key_name=request.key_name, code_sha256=code[1], runtime=request.lambda_runtime,
                        handler=request.lambda_handler, role_arn=request.lambda_role)
    desired = desired_state(plan, digest, settings)
    return Prepared(name, digest, clients, found, diff(desired, found), context, desired, desired.route_window)


def resolve_subnets(clients: Clients, subnet_ids: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    """The given subnets (checked to exist, in one VPC), or the default VPC's default subnets; an ALB needs two zones."""
    with aws_errors("reading subnets"):
        if subnet_ids:
            try:
                subnets = clients.ec2.describe_subnets(SubnetIds=list(subnet_ids))["Subnets"]
            except Exception as exc:
                if error_code(exc).startswith("InvalidSubnet"):
                    raise HetplanError(f"--subnet-ids: {exc.response['Error'].get('Message', 'unknown subnet')}") from None
                raise
        else:
            subnets = clients.ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
            if not subnets:
                raise HetplanError("this region has no default VPC: give --subnet-ids (two or more, in different zones)")
    vpcs = {s["VpcId"] for s in subnets}
    if len(vpcs) != 1:
        raise HetplanError(f"--subnet-ids span {len(vpcs)} VPCs: give subnets of one VPC")
    if len({s["AvailabilityZone"] for s in subnets}) < 2:
        raise HetplanError("the load balancer needs subnets in two or more availability zones: give --subnet-ids from two zones")
    return tuple(sorted(s["SubnetId"] for s in subnets)), vpcs.pop()


def parse_window(text: str, timeline: Timeline, now: dt.datetime) -> int:
    """``now``, a window index, or an ISO time → the window index."""
    text = text.strip()
    if text == "now":
        return timeline.window_at(now)
    if text.isdigit():
        index = int(text)
        if not 0 <= index < len(timeline.windows):
            raise HetplanError(f"--apply-window {index}: the plan has windows 0-{len(timeline.windows) - 1}")
        return index
    return timeline.window_at(parse_start(text))


def _apply_window(request, plan, name, digest, clients, found, context, start, now) -> Prepared:
    """Only the load balancer's weights change: to those of the window at ``--apply-window``."""
    balancer = found.get(("load-balancer", name))
    if balancer is None:
        raise HetplanError(f"no deployment '{name}' to apply a window to: deploy the plan first (or give its --name)")
    window = parse_window(request.apply_window, Timeline(plan, start), now)
    options = used_options(plan)
    keys = {o["option"]: option_key(name, o) for o in options}
    routes = window_routes(next(w for w in plan["windows"] if int(w["index"]) == window), options, keys)
    wanted = Resource("load-balancer", name, balancer.aws_name, {**balancer.spec, "routes": routes})
    desired = Desired(name, digest, (wanted,), (), window)
    changes = [c for c in diff(desired, {("load-balancer", name): balancer}) if c.action != "delete"]
    return Prepared(name, digest, clients, found, changes, context, desired, window)
