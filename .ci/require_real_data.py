"""Exit non-zero unless every JUnit report ran its real-data tests (none skipped, some passed)."""

import sys
import xml.etree.ElementTree as ElementTree


def real_data_outcomes(report: str) -> tuple[int, int]:
    ran = skipped = 0
    for case in ElementTree.parse(report).iter("testcase"):
        if "test_real_data" not in case.get("classname", ""):
            continue
        if case.find("skipped") is not None:
            skipped += 1
        else:
            ran += 1
    return ran, skipped


def main(reports: list[str]) -> int:
    failed = False
    for report in reports:
        ran, skipped = real_data_outcomes(report)
        print(f"{report}: {ran} real-data tests ran, {skipped} skipped")
        failed |= skipped > 0 or ran == 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
