"""Print the closing summary of `make test`: number of tests and coverage of src/rampart; fail under the floor.

Line coverage of src/rampart (every process: the CLI, the twin's function processes and the gateway are
measured too) must stay at or above LINE_FLOOR percent (issue 12); below it `make test` fails.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

LINE_FLOOR = 90.0


def main(pytest_out: str, coverage_json: str) -> int:
    text = Path(pytest_out).read_text(encoding="utf-8", errors="replace")
    counts = dict.fromkeys(("passed", "failed", "skipped", "error", "errors"), 0)
    last = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    if last:
        for num, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", last[-1]):
            counts[word] = int(num)
    cov = json.loads(Path(coverage_json).read_text(encoding="utf-8"))["totals"]
    total = counts["passed"] + counts["failed"] + counts["skipped"]
    lines_pct = 100.0 * cov["covered_lines"] / max(1, cov["num_statements"])
    line = (
        f"==> [summary] tests: {total} ({counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped); line coverage of src/rampart: {lines_pct:.1f}% "
        f"({cov['covered_lines']}/{cov['num_statements']} lines, floor {LINE_FLOOR:.0f}%)"
    )
    if cov.get("num_branches"):
        branches = 100.0 * cov["covered_branches"] / cov["num_branches"]
        line += f"; branch coverage: {branches:.0f}% ({cov['covered_branches']}/{cov['num_branches']} branches)"
    print(line)
    out = Path("build") / "test-summary.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(line + "\n", encoding="utf-8")
    if lines_pct < LINE_FLOOR:
        print(
            f"==> [summary] FAILED: line coverage {lines_pct:.1f}% is under the {LINE_FLOOR:.0f}% floor",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
