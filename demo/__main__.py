"""``python -m demo``: the same as ``python demo/app.py``."""
from demo.app import main

main()
