"""The vending head-end: the service (python -m headend) and the code it
shares with tools/meterctl.py (signing, the vending journal, provisioning)."""
