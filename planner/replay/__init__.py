"""Stage 4, replay: a deployment played against a per-second trace (fluid and request by request), the
compared policies, drift and feedback, and the verdict on a plan. Imports only the stages before it."""
