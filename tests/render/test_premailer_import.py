"""premailer is imported without requests (issue 16: ``check`` imports), and requests stays the real module.

Each test runs in a fresh interpreter: what is imported is a property of the process.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_rendering_an_email_does_not_import_requests() -> None:
    out = run_python(
        "import sys\n"
        "from reallabor_mail.render.engine import mjml_to_html\n"
        "html = mjml_to_html('<mjml><mj-head><mj-style inline=\"inline\">.x { color: red }</mj-style></mj-head>"
        "<mj-body><mj-section><mj-column><mj-text css-class=\"x\">Hallo</mj-text></mj-column></mj-section>"
        "</mj-body></mjml>', 'test.mjml')\n"
        "print('color:red' in html.replace(' ', ''), 'requests' in sys.modules, 'urllib3' in sys.modules)\n"
    )
    assert out.split() == ["True", "False", "False"]


def test_requests_imported_afterwards_is_the_real_module_for_premailer_too() -> None:
    out = run_python(
        "import reallabor_mail.render.engine, premailer.premailer as p\n"
        "import requests\n"
        "print(requests.__file__.endswith('__init__.py'), p.requests.get is requests.get,\n"
        "      p.requests.Session is requests.Session)\n"
    )
    assert out.split() == ["True", "True", "True"]
