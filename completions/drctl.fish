# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_drctl_global_optspecs
    string join \n repo= key-file= catalog= config= endpoint= region= path-style= json q/quiet metrics-file= now= v/verbose h/help V/version
end

function __fish_drctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_drctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_drctl_using_subcommand
    set -l cmd (__fish_drctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c drctl -n "__fish_drctl_needs_command" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_needs_command" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_needs_command" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_needs_command" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_needs_command" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_needs_command" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_needs_command" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_needs_command" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_needs_command" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_needs_command" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_needs_command" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_needs_command" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_needs_command" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_needs_command" -s V -l version -d 'Print version'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "init" -d 'Create a repository and its key file'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "backup" -d 'Back up a configured stack (databases and volumes) into a recovery point, or paths'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "snapshots" -d 'List a stack\'s recovery points, or snapshots'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "ls" -d 'List the files of a snapshot'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "restore" -d 'Restore a stack from its recovery points, or a snapshot into a directory'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "dump" -d 'Write one file of a snapshot to stdout'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "run" -d 'Run a stack\'s backup now, or every job that is due (for cron and systemd timers)'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "archive" -d 'Ship a source\'s WAL or binary log to the repository continuously (a service)'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "daemon" -d 'Run due jobs as they come due, until SIGTERM or SIGINT'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "schedule" -d 'List or install schedules'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "status" -d 'Each stack\'s newest recovery point against its RPO, next run, repository size'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "forget" -d 'Remove recovery points and snapshots that the keep policy does not keep'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "prune" -d 'Delete data no snapshot references, safely while other hosts back up'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "drill" -d 'Restore a stack into scratch containers and directories, check it, and time it against its RPO and RTO'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "check" -d 'Verify the repository\'s structure, and optionally its data'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "recover" -d 'A new host from the repository alone: drctl\'s configuration, then each stack\'s Compose project, volumes and databases, started and checked (dependencies first)'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "discover" -d 'Propose a stack file (and a drill) per running Compose project'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "copy" -d 'Copy every object another repository lacks into it (an offsite copy, best pulled from a second machine); needs no key'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "catalog" -d 'Manage the local catalog'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "repair" -d 'Rebuild repository metadata from the repository itself'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "config" -d 'Validate configuration'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "key" -d 'Manage key files'
complete -c drctl -n "__fish_drctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand init" -l compression -d 'zstd level for the repository\'s new data (1 = fastest, 19 = smallest)' -r
complete -c drctl -n "__fish_drctl_using_subcommand init" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand init" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand init" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand init" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand init" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand init" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand init" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand init" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand init" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand init" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand init" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand init" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand init" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand backup" -l stack -d 'Back up the given paths as a snapshot of stack NAME instead of a configured stack' -r
complete -c drctl -n "__fish_drctl_using_subcommand backup" -l source -d 'Only this source of the stack (repeatable)' -r
complete -c drctl -n "__fish_drctl_using_subcommand backup" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand backup" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand backup" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand backup" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand backup" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand backup" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand backup" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand backup" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand backup" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand backup" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand backup" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand backup" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand backup" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand snapshots" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand snapshots" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand snapshots" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand snapshots" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand snapshots" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand snapshots" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand snapshots" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand snapshots" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand snapshots" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand snapshots" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand snapshots" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand snapshots" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand snapshots" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand ls" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand ls" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand ls" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand ls" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand ls" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand ls" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand ls" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand ls" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand ls" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand ls" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand ls" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand ls" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand ls" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l at -d 'Point in time: RFC 3339, "YYYY-MM-DD HH:MM" (local time) or relative ("2h ago")' -r
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l source -d 'Only this source of the stack (repeatable)' -r
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l path -d 'Restore only this path of the snapshot (kept at its place under --to)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l to -d 'Target directory: a snapshot\'s files, a volume source, or a database\'s dump files' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l into-container -d 'Load a database source into this container instead of the one it came from' -r
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l dry-run -d 'Print the plan and change nothing'
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l force -d 'Replace databases and directories that hold data'
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l overwrite -d 'Restore a snapshot into a non-empty directory, replacing files that are in the way'
complete -c drctl -n "__fish_drctl_using_subcommand restore" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand restore" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand restore" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand restore" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand dump" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand dump" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand dump" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand dump" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand dump" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand dump" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand dump" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand dump" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand dump" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand dump" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand dump" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand dump" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand dump" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand run" -l source -d 'Only this source of the stack (repeatable)' -r
complete -c drctl -n "__fish_drctl_using_subcommand run" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand run" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand run" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand run" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand run" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand run" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand run" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand run" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand run" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand run" -l due -d 'Run every job whose latest scheduled slot has no successful run, once each'
complete -c drctl -n "__fish_drctl_using_subcommand run" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand run" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand run" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand run" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand archive" -l source -d 'Its source with `pitr = true` (needed only when it has several)' -r
complete -c drctl -n "__fish_drctl_using_subcommand archive" -l partial-every -d 'Store the growing WAL segment or binary log file again at most this often' -r
complete -c drctl -n "__fish_drctl_using_subcommand archive" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand archive" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand archive" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand archive" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand archive" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand archive" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand archive" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand archive" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand archive" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand archive" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand archive" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand archive" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand archive" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -l jobs -d 'Most jobs running at once (each stack still runs one at a time)' -r
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand daemon" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -f -a "list" -d 'Each job, its expression, last success and next run'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -f -a "install" -d 'Install a systemd timer or a crontab entry that runs `drctl run --due` every minute, and keeps `drctl archive` running for each stack with a point-in-time source'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and not __fish_seen_subcommand_from list install help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from list" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from list" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from list" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from list" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from list" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from list" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from list" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from list" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from list" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from list" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l unit-dir -d 'Directory for the systemd units' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l crontab -d 'Crontab file to edit [default: the user\'s crontab, through `crontab`]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l systemd -d 'Write drctl.service and drctl.timer (and drctl-archive@.service for point-in-time sources)'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l cron -d 'Put a block into a crontab (replaced, not duplicated, by a second install)'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l dry-run -d 'Print what would be written and change nothing'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from help" -f -a "list" -d 'Each job, its expression, last success and next run'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from help" -f -a "install" -d 'Install a systemd timer or a crontab entry that runs `drctl run --due` every minute, and keeps `drctl archive` running for each stack with a point-in-time source'
complete -c drctl -n "__fish_drctl_using_subcommand schedule; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand status" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand status" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand status" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand status" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand status" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand status" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand status" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand status" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand status" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand status" -l check -d 'Exit 1 when any (named) stack is not OK: its newest recovery point older than its RPO, a source failed or never backed up, or a gap in an archive'
complete -c drctl -n "__fish_drctl_using_subcommand status" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand status" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand status" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand forget" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand forget" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand forget" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand forget" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand forget" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand forget" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand forget" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand forget" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand forget" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand forget" -l dry-run -d 'Show what would be kept and removed, and why; remove nothing'
complete -c drctl -n "__fish_drctl_using_subcommand forget" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand forget" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand forget" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand forget" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l grace -d 'Unreferenced packs are deleted only once marked for this long (longer than any backup)' -r
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l repack-threshold -d 'Repack packs whose unreferenced share is at least PERCENT' -r
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l dry-run -d 'Show what would be marked, repacked and deleted; change nothing'
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l force -d 'Act even when the snapshot list is empty or shrank sharply since the last look'
complete -c drctl -n "__fish_drctl_using_subcommand prune" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand prune" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand prune" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand prune" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l host -d 'Rehearse the whole-host recovery (every stack, or those named) into scratch Compose projects: internal networks, no published ports, nothing live touched; everything removed after' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l at -d 'Restore to this time (point-in-time sources replayed to it, others from their newest point at or before it), or `random`: a random second of the recovery window' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l junit -d 'Write the results as JUnit XML to this file' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l all -d 'Run every configured drill'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l keep -d 'Leave the scratch containers, network and directories in place'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -a "history" -d 'Past drills with their measured RTO against the target'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -a "report" -d 'An HTML page of each stack\'s measured RTO over time and its verdicts'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and not __fish_seen_subcommand_from history report help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from history" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from history" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from history" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from history" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from history" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from history" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from history" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from history" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from history" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from history" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from history" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from history" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from history" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -l html -d 'Write the page here instead of to stdout' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -l junit -d 'Also write each drill\'s newest result as JUnit XML to this file (for drills run by `run --due` or the daemon)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from report" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from help" -f -a "history" -d 'Past drills with their measured RTO against the target'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from help" -f -a "report" -d 'An HTML page of each stack\'s measured RTO over time and its verdicts'
complete -c drctl -n "__fish_drctl_using_subcommand drill; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand check" -l read-data -d 'Also download and verify data: all packs, or PERCENT of them chosen at random' -r
complete -c drctl -n "__fish_drctl_using_subcommand check" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand check" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand check" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand check" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand check" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand check" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand check" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand check" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand check" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand check" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand check" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand check" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand check" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l at -d 'The newest point at or before this time' -r
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l config-to -d 'Write the stacks\' configuration (stack and drill files) as their points carry it under DIR (DIR/schedules, DIR/restore-drills) instead of where drctl.toml says; existing files are never replaced' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l all -d 'Every stack in the repository'
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l list -d 'List every stack in the repository with its newest points, then stop'
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l config-only -d 'Write the configuration only: restore no stack'
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l force -d 'Replace data already there (a recovery that was interrupted, run again); without it, a directory or database that holds data is refused, source by source'
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l dry-run -d 'Print what would be written, created, restored and started, and change nothing'
complete -c drctl -n "__fish_drctl_using_subcommand recover" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand recover" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand recover" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand recover" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand discover" -l write -d 'Write the files under DIR (DIR/schedules, DIR/restore-drills) instead of printing them; a file that exists is compared, never overwritten' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand discover" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand discover" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand discover" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand discover" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand discover" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand discover" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand discover" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand discover" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand discover" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand discover" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand discover" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand discover" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand discover" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l from -d 'The repository to copy from: a URL or a `[remotes.NAME]` of drctl.toml (default: the configured repository)' -r
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l to -d 'The repository to copy into: a URL or a `[remotes.NAME]` of drctl.toml; an empty bucket or directory, or an earlier copy of the same repository' -r
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l jobs -d 'Objects copied at once (each is held in memory: up to ~33 MB for a pack)' -r
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l object-lock -d 'Lock every object copied for this long with S3 Object Lock (`90d`); the bucket must have Object Lock enabled (default: the remote\'s `object_lock`)' -r
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l object-lock-mode -d 'The Object Lock mode: compliance (no one can delete early) or governance' -r
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l read-back -d 'Also read every copied object back and check it against its name'
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l dry-run -d 'Show what would be copied; copy nothing'
complete -c drctl -n "__fish_drctl_using_subcommand copy" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand copy" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand copy" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand copy" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -f -a "rebuild" -d 'Recreate the catalog from the repository alone'
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and not __fish_seen_subcommand_from rebuild help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from rebuild" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from help" -f -a "rebuild" -d 'Recreate the catalog from the repository alone'
complete -c drctl -n "__fish_drctl_using_subcommand catalog; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -f -a "index" -d 'Write index files again from the trailers of packs no readable index lists'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -f -a "config" -d 'Write a lost config object again from the repository\'s key file'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and not __fish_seen_subcommand_from index config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from index" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from index" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from index" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from index" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from index" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from index" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from index" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from index" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from index" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from index" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from index" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from index" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from index" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from config" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from config" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from config" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from config" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from config" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from config" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from config" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from config" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from config" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from config" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from config" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from config" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from config" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from help" -f -a "index" -d 'Write index files again from the trailers of packs no readable index lists'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from help" -f -a "config" -d 'Write a lost config object again from the repository\'s key file'
complete -c drctl -n "__fish_drctl_using_subcommand repair; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "check" -d 'Check drctl.toml and every stack file; errors name file:line:column'
complete -c drctl -n "__fish_drctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -l live -d 'Also check what the files name against this host: containers running, a trial login with the backup\'s credentials, paths and volumes, binary logging for pitr'
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Check drctl.toml and every stack file; errors name file:line:column'
complete -c drctl -n "__fish_drctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -f -a "export" -d 'Write a copy of the key file; --write-only leaves out the identity'
complete -c drctl -n "__fish_drctl_using_subcommand key; and not __fish_seen_subcommand_from export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -l repo -d 'Repository URL: file:///path or s3://bucket/prefix' -r
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -l key-file -d 'Key file holding the age identity and the repository\'s write secrets' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -l catalog -d 'Local catalog database (a cache; rebuilt from the repository when missing)' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -l config -d 'Configuration file [default: /etc/drctl/drctl.toml]' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -l endpoint -d 'S3 endpoint URL (MinIO, Garage, ...); AWS when unset' -r
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -l region -d 'S3 region' -r
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -l path-style -d 'Use path-style S3 addressing (http://host/bucket/key); --path-style=false turns it off' -r -f -a "true\t''
false\t''"
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -l metrics-file -d 'Write Prometheus metrics to this file (atomically) after runs and on `status`' -r -F
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -l now -d 'Pretend the time is TIME (tests and rehearsals of schedules)' -r
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -l write-only -d 'Leave out the age identity: the copy can back up but never read'
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -l json -d 'Print one JSON document on stdout instead of text'
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -s q -l quiet -d 'Print no progress and no summary'
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -s v -l verbose -d 'More log output (-v, -vv); DRCTL_LOG sets a filter too'
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write a copy of the key file; --write-only leaves out the identity'
complete -c drctl -n "__fish_drctl_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "init" -d 'Create a repository and its key file'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "backup" -d 'Back up a configured stack (databases and volumes) into a recovery point, or paths'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "snapshots" -d 'List a stack\'s recovery points, or snapshots'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "ls" -d 'List the files of a snapshot'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "restore" -d 'Restore a stack from its recovery points, or a snapshot into a directory'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "dump" -d 'Write one file of a snapshot to stdout'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "run" -d 'Run a stack\'s backup now, or every job that is due (for cron and systemd timers)'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "archive" -d 'Ship a source\'s WAL or binary log to the repository continuously (a service)'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "daemon" -d 'Run due jobs as they come due, until SIGTERM or SIGINT'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "schedule" -d 'List or install schedules'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "status" -d 'Each stack\'s newest recovery point against its RPO, next run, repository size'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "forget" -d 'Remove recovery points and snapshots that the keep policy does not keep'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "prune" -d 'Delete data no snapshot references, safely while other hosts back up'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "drill" -d 'Restore a stack into scratch containers and directories, check it, and time it against its RPO and RTO'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "check" -d 'Verify the repository\'s structure, and optionally its data'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "recover" -d 'A new host from the repository alone: drctl\'s configuration, then each stack\'s Compose project, volumes and databases, started and checked (dependencies first)'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "discover" -d 'Propose a stack file (and a drill) per running Compose project'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "copy" -d 'Copy every object another repository lacks into it (an offsite copy, best pulled from a second machine); needs no key'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "catalog" -d 'Manage the local catalog'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "repair" -d 'Rebuild repository metadata from the repository itself'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "config" -d 'Validate configuration'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "key" -d 'Manage key files'
complete -c drctl -n "__fish_drctl_using_subcommand help; and not __fish_seen_subcommand_from init backup snapshots ls restore dump run archive daemon schedule status forget prune drill check recover discover copy catalog repair config key help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c drctl -n "__fish_drctl_using_subcommand help; and __fish_seen_subcommand_from schedule" -f -a "list" -d 'Each job, its expression, last success and next run'
complete -c drctl -n "__fish_drctl_using_subcommand help; and __fish_seen_subcommand_from schedule" -f -a "install" -d 'Install a systemd timer or a crontab entry that runs `drctl run --due` every minute, and keeps `drctl archive` running for each stack with a point-in-time source'
complete -c drctl -n "__fish_drctl_using_subcommand help; and __fish_seen_subcommand_from drill" -f -a "history" -d 'Past drills with their measured RTO against the target'
complete -c drctl -n "__fish_drctl_using_subcommand help; and __fish_seen_subcommand_from drill" -f -a "report" -d 'An HTML page of each stack\'s measured RTO over time and its verdicts'
complete -c drctl -n "__fish_drctl_using_subcommand help; and __fish_seen_subcommand_from catalog" -f -a "rebuild" -d 'Recreate the catalog from the repository alone'
complete -c drctl -n "__fish_drctl_using_subcommand help; and __fish_seen_subcommand_from repair" -f -a "index" -d 'Write index files again from the trailers of packs no readable index lists'
complete -c drctl -n "__fish_drctl_using_subcommand help; and __fish_seen_subcommand_from repair" -f -a "config" -d 'Write a lost config object again from the repository\'s key file'
complete -c drctl -n "__fish_drctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Check drctl.toml and every stack file; errors name file:line:column'
complete -c drctl -n "__fish_drctl_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "export" -d 'Write a copy of the key file; --write-only leaves out the identity'
