"""``python -m neuro`` runs the ``neuro`` command."""

from neuro.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
