"""One router per resource of the control plane, all under `/v1`."""
