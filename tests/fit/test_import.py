"""The fit stage imports no torch (it runs on any machine, on anyone's results table)."""

import subprocess
import sys


def test_fit_package_and_command_import_without_torch():
    code = (
        "import sys; import scaling_repro.fit, scaling_repro.fit.joint, scaling_repro.fit.critical, "
        "scaling_repro.fit.points, scaling_repro.analysis.published, scaling_repro.commands.fit; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
