# Runs ufw rule commands in one process, with ufw's own code, as /usr/sbin/ufw runs one.
#
# Arguments: the ufw script's path (ufw checks its own permissions, as when it runs), then
# each command's argument count and its arguments (`/usr/sbin/ufw 2 allow 22/tcp 1 ...`).
# The rules files are updated command by command, as ufw does for an inactive firewall;
# when the firewall is enabled, its user chains are then reloaded once from those files,
# as `ufw app update` does for several rules. A last `--force enable` is ufw's own enable,
# which starts the firewall from those files. The result is what one ufw process per
# command would leave, in both the rules files and the running chains.
import gettext
import os
import sys

import ufw.common
import ufw.frontend
from ufw.common import UFWError
from ufw.util import create_lock, release_lock

gettext.install(ufw.common.programName)


def commands(argv):
    at = 0
    while at < len(argv):
        count = int(argv[at])
        yield argv[at + 1:at + 1 + count]
        at += 1 + count


def run(ui, number, args):
    try:
        parsed = ufw.frontend.parse_command(["ufw"] + args)
        rule = parsed.data.get("rule", "")
        iptype = parsed.data.get("iptype", "")
        return ui.do_action(parsed.action, rule, iptype, parsed.force)
    except (UFWError, ValueError) as e:
        sys.stderr.write("ERROR: command %d (ufw %s): %s\n"
                         % (number, " ".join(args), getattr(e, "value", e)))
        sys.exit(1)


def main():
    sys.argv = sys.argv[1:]
    ui = ufw.frontend.UFWFrontend(False)
    backend = ui.backend
    enabled = backend.is_enabled()
    lockfile = "/run/ufw.lock"
    if os.getuid() != 0 or "TESTSTATE" in os.environ:
        lockfile = os.path.join(ufw.common.state_dir, "ufw.lock")
    lock = create_lock(lockfile=lockfile, dryrun=False)
    try:
        # Rules files only while the batch runs; the chains follow in one reload.
        backend.is_enabled = lambda: False
        enabling = False
        for number, args in enumerate(commands(sys.argv[1:]), 1):
            if enabling:
                sys.stderr.write("ERROR: command %d (ufw %s) follows the enable, which "
                                 "must come last\n" % (number, " ".join(args)))
                sys.exit(1)
            if args in (["enable"], ["--force", "enable"]):
                # ufw's enable sees the real state: it loads what the commands wrote.
                del backend.is_enabled
                enabling = True
            said = run(ui, number, args)
            if said:
                print(said)
        if not enabling:
            del backend.is_enabled
            if enabled:
                backend._reload_user_rules()
                print("Running firewall reloaded from the rules files")
    except UFWError as e:
        sys.stderr.write("ERROR: %s\n" % e.value)
        sys.exit(1)
    finally:
        release_lock(lock)


main()
