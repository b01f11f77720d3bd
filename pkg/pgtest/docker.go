package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// The Docker path: one Postgres container per test binary, started through
// testcontainers-go from the image named by EnvImage.

// EnvImage names the variable holding the Postgres image the tests run,
// DefaultImage by default. Where the engine cannot pull (no registry, rate
// limits), `make base-images` builds localhost/rickmorty/postgres:15 from
// Debian's packages, and make sets EnvImage to it.
const EnvImage = "PGTEST_IMAGE"

// DefaultImage is the Postgres image of the Docker path when EnvImage is unset.
const DefaultImage = "postgres:17-alpine"

// EnvNoDocker names the variable that, when set, keeps the tests off Docker
// even where TEST_DATABASE_URL is unset (they then fail and say so).
const EnvNoDocker = "PGTEST_NO_DOCKER"

// containerLabel marks the containers pgtest starts, for
// `docker ps --filter label=org.rickmorty.pgtest`.
const containerLabel = "org.rickmorty.pgtest"

// pullTimeout bounds the pull of a missing image: an engine without a
// registry fails at once or hangs, and either way the message below is
// what the developer needs.
const pullTimeout = 2 * time.Minute

// lifeline is the connection that keeps this process's container alive: see
// holdLifeline. Package level, so that it is never closed (or collected)
// before the process exits.
var lifeline net.Conn //nolint:unused // held, never read: its being open keeps the container alive

// dockerAvailable: an engine answers (DOCKER_HOST, else the default socket).
func dockerAvailable() bool {
	disableRyuk()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return false
	}
	defer p.Close() //nolint:errcheck // a probe: nothing to do if closing it fails
	return p.Health(ctx) == nil
}

// disableRyuk turns testcontainers' reaper off unless the environment says
// otherwise: it is one more image to pull, and pgtest removes its container
// itself (holdLifeline). It must run before testcontainers reads its
// configuration, which it does once, on first use: dockerAvailable.
func disableRyuk() {
	if _, set := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !set {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true") // cannot fail for a valid name
	}
}

func image() string {
	if img := os.Getenv(EnvImage); img != "" {
		return img
	}
	return DefaultImage
}

func startContainer() (string, error) {
	ctx := context.Background()
	img := image()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return "", fmt.Errorf("docker client: %w", err)
	}
	if err := ensureImage(ctx, cli.Client, img); err != nil {
		return "", err
	}
	c, err := tcpostgres.Run(ctx, img,
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
		testcontainers.WithLabels(map[string]string{containerLabel: "1"}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.AutoRemove = true // once stopped (holdLifeline)
		}),
		testcontainers.WithAdditionalLifecycleHooks(testcontainers.ContainerLifecycleHooks{
			PostStarts: []testcontainers.ContainerHook{
				func(ctx context.Context, c testcontainers.Container) error {
					return holdLifeline(ctx, cli.Client, c.GetContainerID())
				},
			},
		}),
	)
	if err != nil {
		return "", fmt.Errorf("start a postgres container from %s: %w", img, err)
	}
	return c.ConnectionString(ctx, "sslmode=disable")
}

// ensureImage makes sure img is in the engine, pulling it when missing, and
// otherwise says how to go on without it.
func ensureImage(ctx context.Context, cli *client.Client, img string) error {
	_, err := cli.ImageInspect(ctx, img)
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect image %s: %w", img, err)
	}
	pctx, cancel := context.WithTimeout(ctx, pullTimeout)
	defer cancel()
	resp, err := cli.ImagePull(pctx, img, client.ImagePullOptions{})
	if err == nil {
		err = resp.Wait(pctx)
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf("the Postgres image %s is not in the Docker engine and pulling it failed (%w).\n"+
		"  Build one from Debian's packages and use it: make base-images, then %s=localhost/rickmorty/postgres:15;\n"+
		"  or use a server instead of Docker: %s=postgres://USER@HOST:PORT/postgres (a user that may CREATE DATABASE; make test fills it in)",
		img, err, EnvImage, EnvURL)
}

// holdLifeline ties the container's life to this process: a shell in the
// container waits for end of input on a stdin attached over the engine's
// connection, then stops Postgres (PID 1; SIGINT is a fast shutdown). When
// the process exits, however it exits, the connection closes, the engine
// ends that input, Postgres stops and the engine removes the container
// (AutoRemove). It needs sh, cat, kill and sleep in the image: the official
// images and the Debian stand-in have them.
func holdLifeline(ctx context.Context, cli *client.Client, id string) error {
	ex, err := cli.ExecCreate(ctx, id, client.ExecCreateOptions{
		AttachStdin: true,
		Cmd:         []string{"sh", "-c", "cat >/dev/null; while kill -INT 1 2>/dev/null; do sleep 1; done"},
	})
	if err != nil {
		return fmt.Errorf("pgtest lifeline: %w", err)
	}
	att, err := cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("pgtest lifeline: %w", err)
	}
	lifeline = att.Conn
	return nil
}
