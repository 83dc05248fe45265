"""One module per step of the sequence: its orchestration (`orchestrate`), its activities and
their typed inputs. functions/flow.py puts them in order; functions/activities.py registers
every module found here."""
