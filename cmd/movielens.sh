#!/usr/bin/env bash
# Download and unpack a MovieLens data set from GroupLens (needs internet):
#   ./cmd/movielens.sh                  ml-1m   -> data/ml-1m/   (ratings.dat, movies.dat, users.dat)
#   ./cmd/movielens.sh ml-100k          ml-100k -> data/ml-100k/ (u.data, u.item, ...)
#   ./cmd/movielens.sh ml-1m /mnt/ds/ml-1m    another destination (then: dataset.data_dir=/mnt/ds/ml-1m)
# `movielens` is accepted as a name for ml-1m (the name in users' existing configs).
# Nothing is downloaded when the destination already holds the data. The archive is checked (zip
# integrity, and the MD5 GroupLens publishes next to it when that can be fetched) and unpacked into a
# temporary folder first: a failed or interrupted download never leaves a half-filled data folder.
# ILORA_MOVIELENS_URL overrides the base URL (a mirror, or a file:// folder holding ml-1m.zip).
set -euo pipefail
# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

name=${1:-ml-1m}
case $name in
    ml-1m | movielens) name=ml-1m marker=ratings.dat ;;
    ml-100k) marker=u.data ;;
    *) ilora_die 2 "unknown MovieLens data set '$name': use ml-1m or ml-100k" ;;
esac
# a destination given on the command line is relative to where the command was typed
dest=${2:-}
[[ -z $dest || $dest == /* ]] || dest=$PWD/$dest
cd "${ILORA_WORKDIR:-$ILORA_ROOT}" || ilora_die 2 "cannot enter ${ILORA_WORKDIR:-$ILORA_ROOT}"
dest=${dest:-$PWD/data/$name}

if [[ -f $dest/$marker ]]; then
    ilora_log "$name is already in $dest ($marker present): nothing to do"
    exit 0
fi
if [[ -e $dest ]] && [[ -n $(ls -A "$dest" 2>/dev/null) ]]; then
    ilora_die 2 "$dest exists but has no $marker: remove it (or choose another destination) and run again"
fi

base=${ILORA_MOVIELENS_URL:-https://files.grouplens.org/datasets/movielens}
url=$base/$name.zip

# download URL FILE: curl, else wget, else Python's urllib (present wherever the project runs)
download() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 3 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1 && [[ $1 != file://* ]]; then
        wget -q -O "$2" "$1"
    else
        python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "$1" "$2"
    fi
}

parent=$(dirname "$dest")
mkdir -p "$parent"
work=$(mktemp -d "$parent/.$name.download.XXXXXX")
trap 'rm -rf "$work"' EXIT

ilora_log "downloading $url"
download "$url" "$work/$name.zip" || ilora_die 1 "download of $url failed: check the network (or set ILORA_MOVIELENS_URL)"

if download "$url.md5" "$work/$name.zip.md5" 2>/dev/null; then
    want=$(grep -oE '[0-9a-fA-F]{32}' "$work/$name.zip.md5" | head -n 1 | tr 'A-F' 'a-f' || true)
    got=$(md5sum "$work/$name.zip" | cut -d' ' -f1)
    [[ -n $want ]] || ilora_die 1 "$url.md5 holds no MD5 sum"
    [[ $want == "$got" ]] || ilora_die 1 "MD5 mismatch for $name.zip (got $got, GroupLens publishes $want): download again"
    ilora_log "MD5 ok ($got)"
else
    ilora_log "note: no MD5 published at $url.md5: checking the zip's integrity only"
fi

if command -v unzip >/dev/null 2>&1; then
    unzip -tq "$work/$name.zip" >/dev/null || ilora_die 1 "$name.zip is corrupt: download again"
    unzip -q "$work/$name.zip" -d "$work/unpacked"
else
    python3 -m zipfile -t "$work/$name.zip" >/dev/null || ilora_die 1 "$name.zip is corrupt: download again"
    python3 -m zipfile -e "$work/$name.zip" "$work/unpacked"
fi

found=$(find "$work/unpacked" -name "$marker" -type f | head -n 1)
[[ -n $found ]] || ilora_die 1 "$name.zip has no $marker: is $url the MovieLens archive?"
if [[ -d $dest ]]; then
    rmdir "$dest"   # an empty folder left by the user (a non-empty one stopped us above)
fi
mv "$(dirname "$found")" "$dest"
ilora_log "$name unpacked into $dest"
ls "$dest" >&2
