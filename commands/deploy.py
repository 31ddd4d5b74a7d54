"""``hetplan deploy``: the plan becomes AWS resources (boto3), previewed, idempotent, and removable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hetplan.commands.common import JsonFlag, PlainFlag, QuietFlag, output
from hetplan.units import split_names


def deploy_command(
    plan: Annotated[Path, typer.Argument(help="Plan JSON written by hetplan solve --out.")],
    start: Annotated[Optional[str], typer.Option(help="Wall time (ISO, UTC) at which the plan's first window begins, "
                                                      "e.g. 2027-01-05T08:00:00Z. Must be in the future for a new deployment.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Deployment name, the prefix of every AWS name (default: hp-<plan hash>). "
                                                     "Give the same name to update a deployment with a new plan.")] = None,
    image_id: Annotated[Optional[str], typer.Option(help="AMI of the VMs; its hetplan-serve unit starts the model server.")] = None,
    key_name: Annotated[Optional[str], typer.Option(help="EC2 key pair for the VMs (optional).")] = None,
    subnet_ids: Annotated[Optional[str], typer.Option(help="Comma-separated subnets, two zones or more (default: the default VPC's).")] = None,
    lambda_zip: Annotated[Optional[Path], typer.Option(help="The Lambda function's package (.zip), one for every model.")] = None,
    lambda_role: Annotated[Optional[str], typer.Option(help="Execution role ARN for the functions (default: deploy makes <name>-lambda).")] = None,
    lambda_runtime: Annotated[str, typer.Option(help="Lambda runtime of the package.")] = "python3.11",
    lambda_handler: Annotated[str, typer.Option(help="Lambda handler of the package.")] = "handler.handler",
    region: Annotated[Optional[str], typer.Option(help="AWS region (default: AWS_REGION or the profile's).")] = None,
    profile: Annotated[Optional[str], typer.Option(help="AWS profile (default: AWS_PROFILE or the default chain).")] = None,
    endpoint_url: Annotated[Optional[str], typer.Option(help="Send every AWS call to this endpoint (e.g. a local moto server).")] = None,
    apply_window: Annotated[Optional[str], typer.Option(help="Only set the load balancer's weights to one window's: "
                                                             "[bold]now[/], a window index, or an ISO time. Run it from cron.")] = None,
    teardown: Annotated[bool, typer.Option("--teardown", help="Delete everything tagged with the deployment's name.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would change.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    json_output: JsonFlag = False,
    plain: PlainFlag = False,
    quiet: QuietFlag = False,
):
    """Deploy a plan to AWS: launch templates and Auto Scaling groups with a scheduled action per change of VM count,
    Lambda functions with provisioned concurrency schedules, and an Application Load Balancer splitting traffic by
    the plan's shares. Shows what will change and asks first; deploying the same plan again changes nothing.

    Creates billable AWS resources. Needs the permissions in examples/deploy-iam-policy.json.
    """
    from hetplan.commands.output.deploy import deploy_json, show_changes
    from hetplan.planner.deploy.changes import apply
    from hetplan.planner.deploy.workflow import Request, prepare

    out = output(json_output, plain, quiet)
    request = Request(plan=plan, name=name, start=start, image_id=image_id, key_name=key_name,
                      subnet_ids=split_names(subnet_ids) or (), lambda_zip=lambda_zip, lambda_role=lambda_role,
                      lambda_runtime=lambda_runtime, lambda_handler=lambda_handler, region=region, profile=profile,
                      endpoint_url=endpoint_url, apply_window=apply_window, teardown=teardown)
    prepared = prepare(request)
    if not prepared.changes:
        status = "nothing to remove" if teardown else "up to date"
        _finish(out, prepared, status, [], deploy_json, show_changes)
        return
    if dry_run or not yes:
        show_changes(out, prepared, preview=True)
    if dry_run:
        _finish(out, prepared, "dry run: nothing changed", [], deploy_json, None)
        return
    if not yes and not typer.confirm(f"Apply these {len(prepared.changes)} changes to {prepared.name}?", default=False, err=True):
        _finish(out, prepared, "declined: nothing changed", [], deploy_json, None)
        return
    with out.progress("deploying", total=len(prepared.changes)) as progress:
        done = apply(prepared.context, prepared.changes, prepared.found, progress)
    _finish(out, prepared, "removed" if teardown else "applied", done, deploy_json, show_changes)


def _finish(out, prepared, status: str, done: list[str], deploy_json, show_changes) -> None:
    if out.json:
        out.print_json(deploy_json(prepared, status, done))
        return
    if show_changes is not None and done:
        show_changes(out, prepared, preview=False)
    out.note(f"{prepared.name}: {status}" + (f" ({len(done)} changes)" if done else ""))
