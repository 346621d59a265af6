package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/stompgate/stompgate/gateway"
	"github.com/stompgate/stompgate/gateway/config"
)

// Set at build time: go build -ldflags "-X main.version=1.2.3 -X main.commit=abc123".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	gateway.Version = version
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first SIGINT/SIGTERM starts a graceful shutdown; restoring the
	// default handling then lets a second one end the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, newApp(gateway.Run), os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes app with args (args[0] is the program name) and returns its
// exit code. Errors are written to stderr, and so is the log.
func run(ctx context.Context, app *cli.App, args []string, stdout, stderr io.Writer) int {
	app.Writer, app.ErrWriter = stdout, stderr
	err := app.RunContext(ctx, args)
	if err == nil {
		return 0
	}
	_, _ = fmt.Fprintln(stderr, "stompgate:", err)
	var exit cli.ExitCoder
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	return 1
}

// gatewayRunner is gateway.Run's signature; tests pass a fake to observe the
// configuration and logger serve ends up with.
type gatewayRunner func(ctx context.Context, cfg config.Config, log logrus.FieldLogger) error

// newApp builds the command-line program. Errors are returned from RunContext
// rather than handled with os.Exit, so the app can run inside tests.
func newApp(runGateway gatewayRunner) *cli.App {
	defaults := config.DefaultConfig()
	configFlag := func(required bool) *cli.StringFlag {
		return &cli.StringFlag{
			Name:      "config",
			Aliases:   []string{"c"},
			Usage:     "YAML config `FILE`; keys it leaves out keep their defaults",
			EnvVars:   []string{"STOMPGATE_CONFIG"},
			TakesFile: true,
			Required:  required,
		}
	}
	return &cli.App{
		Name:    "stompgate",
		Usage:   "STOMP 1.0/1.1/1.2 to AMQP 0-9-1 gateway",
		Version: version,
		// Return errors (cli.Exit included) to run instead of exiting.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			{
				Name:  "serve",
				Usage: "accept STOMP connections until SIGINT or SIGTERM",
				Flags: []cli.Flag{
					configFlag(false),
					&cli.StringFlag{
						Name:    "listen",
						Usage:   "STOMP listen `ADDR` (host:port); overrides listen",
						EnvVars: []string{"STOMPGATE_LISTEN"},
						Value:   defaults.Listen,
					},
					&cli.StringFlag{
						Name:    "amqp-url",
						Usage:   "broker `URL`, amqp:// or amqps://; overrides amqp.url",
						EnvVars: []string{"STOMPGATE_AMQP_URL"},
						Value:   defaults.AMQP.URL,
					},
					&cli.StringFlag{
						Name:    "tls-listen",
						Usage:   "STOMP over TLS listen `ADDR` (needs tls.cert_file, tls.key_file); overrides tls.listen",
						EnvVars: []string{"STOMPGATE_TLS_LISTEN"},
						Value:   defaults.TLS.Listen,
					},
					&cli.StringFlag{
						Name:    "ws-listen",
						Usage:   "STOMP over WebSocket listen `ADDR`, endpoint websocket.path (/ws); overrides websocket.listen",
						EnvVars: []string{"STOMPGATE_WS_LISTEN"},
						Value:   defaults.WebSocket.Listen,
					},
					&cli.StringFlag{
						Name:    "http-listen",
						Usage:   "admin HTTP listen `ADDR` for /healthz, /readyz, /metrics; overrides admin.listen",
						EnvVars: []string{"STOMPGATE_HTTP_LISTEN"},
						Value:   defaults.Admin.Listen,
					},
					&cli.BoolFlag{
						Name:    "pprof",
						Usage:   "serve net/http/pprof on the admin listener; overrides admin.pprof",
						EnvVars: []string{"STOMPGATE_PPROF"},
					},
					&cli.StringFlag{
						Name:    "log-level",
						Usage:   "logrus `LEVEL` (trace, debug, info, warn, error); overrides log.level",
						EnvVars: []string{"STOMPGATE_LOG_LEVEL"},
						Value:   defaults.Log.Level,
					},
					&cli.StringFlag{
						Name:    "log-format",
						Usage:   "log `FORMAT`, text or json; overrides log.format",
						EnvVars: []string{"STOMPGATE_LOG_FORMAT"},
						Value:   defaults.Log.Format,
					},
				},
				Action: func(c *cli.Context) error { return serve(c, runGateway) },
			},
			{
				Name:   "check-config",
				Usage:  "load and validate a config file, then exit",
				Flags:  []cli.Flag{configFlag(true)},
				Action: checkConfig,
			},
			{
				Name:  "version",
				Usage: "print version, commit and Go version",
				Action: func(c *cli.Context) error {
					_, err := fmt.Fprintf(c.App.Writer, "stompgate %s (commit %s, %s)\n", version, commit, runtime.Version())
					return err
				},
			},
		},
	}
}

// serve loads the config, applies the flags and env vars the user set, sets
// up the logger and runs the gateway until c.Context ends.
func serve(c *cli.Context, runGateway gatewayRunner) error {
	if c.Args().Present() {
		return cli.Exit(fmt.Sprintf("serve takes no arguments, got %q", c.Args().Slice()), 2)
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	// style.md practice 10: flags and STOMPGATE_* override the file only
	// when set. (urfave/cli applies env vars to flags, so a flag given on
	// the command line beats its env var.)
	overrides := []struct {
		flag  string
		field *string
	}{
		{"listen", &cfg.Listen},
		{"amqp-url", &cfg.AMQP.URL},
		{"log-level", &cfg.Log.Level},
		{"log-format", &cfg.Log.Format},
		{"tls-listen", &cfg.TLS.Listen},
		{"ws-listen", &cfg.WebSocket.Listen},
		{"http-listen", &cfg.Admin.Listen},
	}
	for _, o := range overrides {
		if c.IsSet(o.flag) {
			*o.field = c.String(o.flag)
		}
	}
	if c.IsSet("pprof") {
		cfg.Admin.Pprof = c.Bool("pprof")
	}
	if err := cfg.Validate(); err != nil {
		return cli.Exit("invalid configuration after applying flags and environment: "+indentLines(err.Error()), 1)
	}
	log, err := newLogger(cfg.Log, c.App.ErrWriter)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	path := ""
	if c.IsSet("config") {
		path = c.String("config")
	}
	ctx := gateway.WithReloads(c.Context, reloadOnSIGHUP(c.Context, path, cfg, log))
	if err := runGateway(ctx, cfg, log); err != nil {
		return cli.Exit(err.Error(), 1)
	}
	return nil
}

// checkConfig runs the same load-and-validate path as serve and reports the
// verdict (style.md practice 10).
func checkConfig(c *cli.Context) error {
	if c.Args().Present() {
		return cli.Exit(fmt.Sprintf("check-config takes no arguments, got %q (use --config FILE)", c.Args().Slice()), 2)
	}
	if _, err := loadConfig(c); err != nil {
		return err
	}
	_, err := fmt.Fprintln(c.App.Writer, "config OK")
	return err
}

// loadConfig returns DefaultConfig, or the file named by --config loaded
// over it and validated. A failure is a cli.Exit error with status 1.
func loadConfig(c *cli.Context) (config.Config, error) {
	if !c.IsSet("config") {
		return config.DefaultConfig(), nil
	}
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		return config.Config{}, cli.Exit("invalid configuration: "+indentLines(err.Error()), 1)
	}
	return cfg, nil
}

// indentLines indents every line after the first, so that each problem of
// a joined error reads as an item under the first line.
func indentLines(text string) string {
	return strings.ReplaceAll(text, "\n", "\n  ")
}

// newLogger builds the process's only logger (style.md practice 11): the
// level and formatter from cfg, writing to out (stderr in main).
func newLogger(cfg config.LogConfig, out io.Writer) (*logrus.Logger, error) {
	level, err := logrus.ParseLevel(cfg.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	log := logrus.New()
	log.SetOutput(out)
	log.SetLevel(level)
	switch cfg.Format {
	case "text":
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	case "json":
		log.SetFormatter(&logrus.JSONFormatter{})
	default:
		return nil, fmt.Errorf("log.format: must be text or json, got %q", cfg.Format)
	}
	return log, nil
}

// reloadOnSIGHUP turns each SIGHUP into a reload until ctx ends: the
// config file at path (--config; "" keeps cfg's acl) is loaded and validated again and its acl section
// handed to the gateway, which also re-reads auth.jwt.jwks_file. Other
// keys need a restart. A file that no longer loads is logged and ignored.
func reloadOnSIGHUP(ctx context.Context, path string, cfg config.Config, log logrus.FieldLogger) <-chan config.ACLConfig {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reloads := make(chan config.ACLConfig)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-hup:
			case <-ctx.Done():
				return
			}
			acl := cfg.ACL
			if path != "" {
				next, err := config.Load(path)
				if err != nil {
					log.WithError(err).Error("SIGHUP: the config file does not load; nothing reloaded")
					continue
				}
				acl = next.ACL
			}
			log.Info("SIGHUP: reloading acl.rules and the JWKS file")
			select {
			case reloads <- acl:
			case <-ctx.Done():
				return
			}
		}
	}()
	return reloads
}
