#!/usr/bin/env bash
# Installs the Debian packages the workflow and its tests need, when they are missing.
# With no arguments: what the workflow's steps run (Tesseract and its German and English data, for
# OCR). The tests name theirs as arguments (chromium for the report's browser test, a font with umlauts).
set -euo pipefail

packages=("$@")
[ ${#packages[@]} -eq 0 ] && packages=(tesseract-ocr tesseract-ocr-deu tesseract-ocr-eng)

needed=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || needed+=("$package")
done
[ ${#needed[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
    echo "Missing system packages: ${needed[*]}. Install them with your system's package manager." >&2
    exit 1
fi
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${needed[@]}"
