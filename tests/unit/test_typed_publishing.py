"""mypy checks a producer's payloads: a model names its event type and types its fields, and
`fleet.publish` takes a model alone or a type with its data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCER = """\
import fleet
from handlers.demo.data import DepositRecorded

fleet.publish(DepositRecorded(account="a-1", amount=5), source="shop")
fleet.publish("demo.deposit_recorded", {"account": "a-1", "amount": 5}, source="shop")
fleet.publish(DepositRecorded(account="a-1", amount="5"), source="shop")  # line 6
fleet.publish(DepositRecorded(account="a-1"), source="shop")  # line 7
fleet.publish(DepositRecorded(account="a-1", amount=5, ammount=5), source="shop")  # line 8
fleet.publish(DepositRecorded(account="a-1", amount=5), {"amount": 5}, source="shop")  # line 9
reveal_type(DepositRecorded.event_type)  # line 10
"""


def test_mypy_refuses_a_wrong_payload_and_accepts_the_right_ones(tmp_path: Path) -> None:
    producer = tmp_path / "producer.py"
    producer.write_text(PRODUCER)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), str(producer)],
        cwd=ROOT,  # the project's mypy cache: the fleet's own modules are checked already
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line.rsplit("producer.py:", 1)[-1] for line in result.stdout.splitlines()]
    errors = {line.split(":", 1)[0] for line in lines if ": error:" in line}
    assert errors == {"6", "7", "8", "9"}, result.stdout
    assert any('"amount" to "DepositRecorded" has incompatible type "str"' in line for line in lines)
    assert any('Missing named argument "amount"' in line for line in lines)
    assert any('Unexpected keyword argument "ammount"' in line for line in lines)
    assert any('10: note: Revealed type is "str"' in line for line in lines), result.stdout
