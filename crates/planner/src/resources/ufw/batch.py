# Runs ufw rule commands in one process, with ufw's own code, as /usr/sbin/ufw runs one.
#
# Arguments: the ufw script's path (ufw checks its own permissions, as when it runs), then
# each command's argument count and its arguments (`/usr/sbin/ufw 2 allow 22/tcp 1 ...`).
# The rules files are updated command by command, as ufw does for an inactive firewall;
# when the firewall is enabled, its user chains are then reloaded once from those files,
# as `ufw app update` does for several rules. A last `--force enable` is ufw's own enable,
# which starts the firewall from those files. The result is what one ufw process per
# command would leave, in both the rules files and the running chains.
import functools
import gettext
import os
import subprocess
import sys

import ufw.backend_iptables
import ufw.common
import ufw.frontend
from ufw.common import UFWError
from ufw.util import cmd, create_lock, release_lock

gettext.install(ufw.common.programName)


def commands(argv):
    at = 0
    while at < len(argv):
        count = int(argv[at])
        yield argv[at + 1:at + 1 + count]
        at += 1 + count


def update_logging(backend, level):
    """ufw's update_logging, with the running logging chains changed by one
    iptables-restore per family rather than one iptables process per chain and rule
    (some 80 at an enable). Falls back to ufw's own for logging rules of other shapes."""
    rules = backend._get_logging_rules(level)
    flushed = backend.chains["before"] + backend.chains["after"] + backend.chains["misc"]
    user = backend.chains["user"]
    if backend.dryrun or not all(known_shape(rule, flushed, user) for rule in rules):
        return UPDATE_LOGGING(backend, level)
    backend.initcaps()
    try:
        backend._write_rules(v6=False)
        backend._write_rules(v6=True)
    except UFWError:
        raise
    except Exception:
        pass  # ufw's own update_logging goes on here too
    if not backend.is_enabled():
        return
    for v6 in (False, True):
        restore_family(backend, v6, rules, flushed, user)
    # The rate limit's log rule, as ufw's own: deleted, then inserted again.
    for chain, v6 in (("ufw-user-limit", False), ("ufw6-user-limit", True)):
        if backend.caps["limit"]["6" if v6 else "4"]:
            rule = backend.ufw_user_limit_log + [backend.ufw_user_limit_log_text + " "]
            backend._chain_cmd(chain, ["-D", chain] + rule, fail_ok=True)
            if backend.defaults["loglevel"] != "off":
                backend._chain_cmd(chain, ["-I", chain] + rule, fail_ok=True)


UPDATE_LOGGING = ufw.backend_iptables.UFWBackendIptables.update_logging


def known_shape(rule, flushed, user):
    chain, args, how = rule
    if chain in flushed:
        return how == "" and args[:2] in (["-A", chain], ["-I", chain]) and all(
            '"' not in a and "\n" not in a for a in args)
    if chain in user:
        return (args, how) in ((["-D", chain, "-j", "RETURN"], ""),
                               (["-I", chain, "-j", "RETURN"], "delete_first"))
    return False


def restore_family(backend, v6, rules, flushed, user):
    """One family's part of update_logging: every chain must exist (ufw lists each);
    the before, after and misc logging chains are flushed (declared in the restore) and
    given their rules; a user logging chain loses its RETURN rule where it has one (ufw's
    `-D` that may fail) and gains one when logging is off."""
    prefix = "ufw6-" if v6 else "ufw-"
    mine = [c for c in flushed + user if c.startswith(prefix)]
    if not mine:
        return
    failed = UFWError(_("Could not update running firewall"))
    rc, listed = cmd([backend.ip6tables if v6 else backend.iptables, "-S"])
    have = set(listed.splitlines())
    if rc != 0 or any("-N " + c not in have for c in mine):
        raise failed
    lines = ["*filter"] + [":%s - [0:0]" % c for c in flushed if c.startswith(prefix)]
    for chain, args, how in rules:
        if not chain.startswith(prefix):
            continue
        if chain in user:
            if "-A %s -j RETURN" % chain in have:
                lines.append("-D %s -j RETURN" % chain)
            if args[0] == "-I":
                lines.append("-I %s -j RETURN" % chain)
        else:
            lines.append(" ".join('"%s"' % a if " " in a else a for a in args))
    lines.append("COMMIT")
    restore = backend.ip6tables_restore if v6 else backend.iptables_restore
    done = subprocess.run([restore, "-n"], input="\n".join(lines) + "\n",
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout)
        raise failed


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
    backend.update_logging = functools.partial(update_logging, backend)
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
