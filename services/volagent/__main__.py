"""`python -m services.volagent --node-name N --store ADDR --run-dir DIR --data-dir DIR [--no-binder]`."""

from services.volagent.app import main

if __name__ == "__main__":
    main()
