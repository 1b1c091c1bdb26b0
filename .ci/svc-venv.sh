# Sourced by .ci/keystone.sh and .ci/congressclient.sh: build a service's venv at a path
# that two runs may share without either one seeing, using or deleting the other's
# half-built venv.
#
# The path ($V) is a symlink to the real venv, a sibling directory .NAME.XXXXXX that is
# built in full, checked, stamped, and only then published by renaming a new symlink over
# $V (rename(2) is atomic): a reader finds the old venv or the new one, never one being
# installed. The venv itself never moves (venvs are not relocatable: the console scripts'
# shebangs name the directory they were installed in); only the link does. An flock on
# .NAME.lock lets one installer at a time work on $V; the others wait, then find it ready.
#
# Ready means: the stamp file charter-packages in the venv holds exactly the package list
# being asked for (written last, after the import checks passed). A venv installed for
# another list, by an older script, or left half-built is rebuilt, and the one it replaces
# is deleted: runs that share a path must ask for the same list (each checkout has paths
# of its own by default, see the callers).

STAMP=charter-packages

# svc_venv_ready VENV PACKAGES
svc_venv_ready() {
    [ -x "$1/bin/python" ] && [ -f "$1/$STAMP" ] && [ "$(cat "$1/$STAMP")" = "$2" ]
}

# svc_venv_install VENV PACKAGES CHECK
# Installs PACKAGES (a space-separated pip list) into a venv published at VENV, unless it is
# ready already. CHECK (bash code) runs with the new venv's bin/ first on PATH before the
# venv is published: its failure leaves VENV as it was.
svc_venv_install() {
    local target=$1 packages=$2 check=$3
    local parent name lock
    parent=$(dirname "$target")
    name=$(basename "$target")
    mkdir -p "$parent"
    parent=$(cd "$parent" && pwd -P)
    target="$parent/$name"
    if svc_venv_ready "$target" "$packages"; then
        echo "$name venv ready: $target"
        return 0
    fi

    exec {lock}>"$parent/.$name.lock"
    flock "$lock"
    if svc_venv_ready "$target" "$packages"; then  # another run built it while we waited
        echo "$name venv ready: $target"
        exec {lock}>&-
        return 0
    fi

    # What is at the path now is not ready. A real directory (the layout of older scripts)
    # is moved aside to be deleted with the other leftovers; anything else is not ours.
    if [ -d "$target" ] && [ ! -L "$target" ]; then
        if [ -f "$target/pyvenv.cfg" ] || [ -z "$(ls -A "$target")" ]; then
            mv -T "$target" "$(mktemp -u "$parent/.$name.XXXXXX")"
        else
            echo "$target exists and is not a venv; point the variable at another path" >&2
            return 1
        fi
    elif [ -e "$target" ] && [ ! -L "$target" ]; then
        echo "$target exists and is not a venv; point the variable at another path" >&2
        return 1
    fi
    # Leftovers of interrupted or replaced installs: none is in use (we hold the lock, and
    # the venv $target links to, if any, is not ready: it goes once the new one is in place).
    local current="" d
    [ -L "$target" ] && current=$(readlink "$target")
    for d in "$parent/.$name".?????? "$parent/.$name".??????.link; do
        if [ -e "$d" ] || [ -L "$d" ]; then
            if [ "$(basename "$d")" != "$current" ]; then
                rm -rf "$d"
            fi
        fi
    done

    local new
    new=$(mktemp -d "$parent/.$name.XXXXXX")
    chmod 755 "$new"
    echo "installing $packages into $target (built in $new)"
    # (grep drops this machine's notes about absent local package mirrors.)
    quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
    # (an && chain: set -e does not act inside an if's condition)
    # shellcheck disable=SC2086  # PACKAGES is a list
    if ! { "${PYTHON:-python3}" -m venv "$new" \
            && quiet "$new/bin/pip" install --quiet --upgrade pip \
            && quiet "$new/bin/pip" install --quiet $packages \
            && PATH="$new/bin:$PATH" bash -euo pipefail -c "$check"; }; then
        rm -rf "$new"
        echo "installing $packages into $target failed" >&2
        return 1
    fi
    printf '%s' "$packages" >"$new/$STAMP"
    ln -s "$(basename "$new")" "$new.link"
    mv -T "$new.link" "$target"
    case "$current" in  # only a venv of ours, as this script names them
        ."$name".??????) rm -rf "${parent:?}/$current" ;;
    esac
    exec {lock}>&-
    echo "$name venv ready: $target"
}
