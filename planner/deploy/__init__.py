"""Stage 6: deploy a plan to AWS (``hetplan deploy``).

- :mod:`.desired` turns a plan into the resources it needs (pure: no AWS, no boto3);
- :mod:`.aws` makes boto3 clients (standard retries, ``--endpoint-url``) and turns AWS errors into one line;
- :mod:`.observed` reads what exists, found by the deployment's tag only;
- :mod:`.changes` compares the two, and applies or tears down in dependency order.

It reads plans through the one plan reader and depends on nothing downstream of it. boto3 is imported here
only, so the planner installs and runs without ever touching AWS code at import time.
"""

TAG_DEPLOYMENT = "hetplan:deployment"  # every resource deploy makes carries it; deploy touches nothing without it
TAG_PLAN = "hetplan:plan"  # the hash of the plan that last created or changed the resource
TAG_RESOURCE = "hetplan:resource"  # the resource's logical name (AWS names may be shortened)
TAG_START = "hetplan:start"  # on the load balancer: the wall time of the plan's first window
