package charttest

import (
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Names of the CloudNativePG mode's resources for release "rickmorty".
const (
	cnpgCluster = "rickmorty-db"
	cnpgPooler  = "rickmorty-db-pooler-ro"
)

func TestCloudNativePGModeRendersClusterAndPooler(t *testing.T) {
	objs := render(t, "--set", "cloudnativepg.enabled=true")

	cluster := find(t, objs, "Cluster", cnpgCluster)
	if str(cluster, "apiVersion") != "postgresql.cnpg.io/v1" {
		t.Errorf("Cluster apiVersion = %q", str(cluster, "apiVersion"))
	}
	if n := get(cluster, "spec.instances"); n != 3 {
		t.Errorf("Cluster instances = %v, want 3", n)
	}
	if got := str(cluster, "spec.storage.size"); got != "10Gi" {
		t.Errorf("storage.size = %q, want 10Gi", got)
	}
	for _, absent := range []string{"spec.imageName", "spec.storage.storageClass", "spec.postgresql"} {
		if v := get(cluster, absent); v != nil {
			t.Errorf("%s = %v, want it left to the operator by default", absent, v)
		}
	}
	if !isBool(get(cluster, "spec.enableSuperuserAccess"), false) {
		t.Errorf("enableSuperuserAccess = %v, want false", get(cluster, "spec.enableSuperuserAccess"))
	}
	initdb := mapAt(cluster, "spec.bootstrap.initdb")
	if initdb["database"] != "rickmorty" || initdb["owner"] != "rickmorty" || str(initdb, "secret.name") != cnpgCluster+"-owner" {
		t.Errorf("bootstrap.initdb = %v, want database and owner rickmorty, secret %s-owner", initdb, cnpgCluster)
	}

	// The API's role: a managed role that can log in and nothing more.
	roles := listAt(cluster, "spec.managed.roles")
	if len(roles) != 1 {
		t.Fatalf("managed.roles = %v, want the API's role", roles)
	}
	role := roles[0].(map[string]any)
	if role["name"] != "rickmorty_api" || !isBool(role["login"], true) || role["ensure"] != "present" {
		t.Errorf("API role = %v, want rickmorty_api, login, present", role)
	}
	for _, attr := range []string{"superuser", "createdb", "createrole", "replication", "bypassrls"} {
		if !isBool(role[attr], false) {
			t.Errorf("API role %s = %v, want false", attr, role[attr])
		}
	}
	if role["connectionLimit"] != 80 || str(role, "passwordSecret.name") != cnpgCluster+"-api" {
		t.Errorf("API role connectionLimit %v, passwordSecret %v", role["connectionLimit"], role["passwordSecret"])
	}
	if inRoles := listAt(role, "inRoles"); len(inRoles) != 0 {
		t.Errorf("API role inRoles = %v, want none (its rights are the grants)", inRoles)
	}

	pooler := find(t, objs, "Pooler", cnpgPooler)
	if str(pooler, "apiVersion") != "postgresql.cnpg.io/v1" || str(pooler, "spec.cluster.name") != cnpgCluster {
		t.Errorf("Pooler apiVersion %q, cluster %q", str(pooler, "apiVersion"), str(pooler, "spec.cluster.name"))
	}
	if str(pooler, "spec.type") != "ro" || get(pooler, "spec.instances") != 2 || str(pooler, "spec.pgbouncer.poolMode") != "transaction" {
		t.Errorf("Pooler type %v, instances %v, poolMode %v; want ro, 2, transaction",
			get(pooler, "spec.type"), get(pooler, "spec.instances"), get(pooler, "spec.pgbouncer.poolMode"))
	}
	if p := stringMap(mapAt(pooler, "spec.pgbouncer.parameters")); p["max_client_conn"] != "1000" || p["default_pool_size"] != "10" {
		t.Errorf("pgbouncer parameters = %v", p)
	}
	cs := listAt(pooler, "spec.template.spec.containers")
	if len(cs) != 1 || get(cs[0], "name") != "pgbouncer" || get(cs[0], "resources.limits.memory") == nil {
		t.Errorf("Pooler template containers = %v, want pgbouncer with resources", cs)
	}

	// No development Postgres.
	if s := ofKind(objs, "StatefulSet"); len(s) != 0 {
		t.Errorf("CloudNativePG mode renders StatefulSet %s", s[0].name())
	}
	for _, o := range objs {
		if strings.Contains(o.name(), "postgres") {
			t.Errorf("CloudNativePG mode renders %s", o.id())
		}
	}
}

func TestCloudNativePGModeWiring(t *testing.T) {
	objs := render(t, "--set", "cloudnativepg.enabled=true")

	// The roles' basic-auth Secrets, and the URLs built from them.
	owner := find(t, objs, "Secret", cnpgCluster+"-owner")
	api := find(t, objs, "Secret", cnpgCluster+"-api")
	pw := map[string]string{}
	for _, s := range []obj{owner, api} {
		if str(s, "type") != "kubernetes.io/basic-auth" {
			t.Errorf("%s type = %q, want kubernetes.io/basic-auth", s.id(), str(s, "type"))
		}
		d := secretData(t, s)
		if !regexp.MustCompile(`^[A-Za-z0-9]{32}$`).MatchString(d["password"]) {
			t.Errorf("%s password is not 32 generated alphanumerics", s.id())
		}
		pw[d["username"]] = d["password"]
	}
	if len(pw) != 2 || pw["rickmorty"] == "" || pw["rickmorty_api"] == "" || pw["rickmorty"] == pw["rickmorty_api"] {
		t.Fatalf("role Secrets: want usernames rickmorty and rickmorty_api with different passwords")
	}

	data := secretData(t, find(t, objs, "Secret", dbSecret))
	want := map[string]struct{ user, host string }{
		"ingester-database-url": {"rickmorty", cnpgCluster + "-rw.rickmorty.svc:5432"},
		"api-database-url":      {"rickmorty_api", cnpgCluster + "-rw.rickmorty.svc:5432"},
		"api-database-read-url": {"rickmorty_api", cnpgPooler + ".rickmorty.svc:5432"},
	}
	if len(data) != len(want) {
		t.Errorf("%s keys = %v, want %v", dbSecret, sortedKeys(data), sortedKeys(want))
	}
	for key, w := range want {
		u := parseURL(t, key, data[key])
		p, _ := u.User.Password()
		if u.User.Username() != w.user || p != pw[w.user] || u.Host != w.host || u.Path != "/rickmorty" || u.Query().Get("sslmode") != "require" {
			t.Errorf("%s = %s@%s%s?%s (password matches its role Secret: %v); want %s@%s/rickmorty?sslmode=require",
				key, u.User.Username(), u.Host, u.Path, u.RawQuery, p == pw[w.user], w.user, w.host)
		}
	}

	// The API: DATABASE_URL (LISTEN, health) to -rw, DATABASE_READ_URL to the pooler.
	e := env(container(t, find(t, objs, "Deployment", apiName), "api"))
	if got := secretRef(e["DATABASE_URL"]); got != dbSecret+"/api-database-url" {
		t.Errorf("api DATABASE_URL from %s", got)
	}
	if got := secretRef(e["DATABASE_READ_URL"]); got != dbSecret+"/api-database-read-url" {
		t.Errorf("api DATABASE_READ_URL from %s", got)
	}
	// The ingester and the migrations: the owner, on -rw.
	ing := env(container(t, find(t, objs, "Deployment", ingesterName), "ingester"))
	if got := secretRef(ing["DATABASE_URL"]); got != dbSecret+"/ingester-database-url" {
		t.Errorf("ingester DATABASE_URL from %s", got)
	}
	if _, ok := ing["DATABASE_READ_URL"]; ok {
		t.Error("the ingester has a DATABASE_READ_URL")
	}
	job := find(t, objs, "Job", migrateName+"-r1")
	if a := annotations(job); a["helm.sh/hook"] != "" {
		t.Errorf("migrate Job is a hook (%q): it would run before the Cluster exists", a["helm.sh/hook"])
	}
	if got := secretRef(env(container(t, job, "ingester"))["DATABASE_URL"]); got != dbSecret+"/ingester-database-url" {
		t.Errorf("migrate DATABASE_URL from %s", got)
	}
	reingest := render(t, "--set", "cloudnativepg.enabled=true", "--set", "ingester.reingest.enabled=true", "--show-only", "templates/reingest-job.yaml")
	if got := secretRef(env(container(t, reingest[0], "ingester"))["DATABASE_URL"]); got != dbSecret+"/ingester-database-url" {
		t.Errorf("re-ingest DATABASE_URL from %s", got)
	}
}

// TestCloudNativePGGrantsMatchTheDevPostgres checks that the API's role
// gets, at the Cluster's bootstrap, exactly the rights the dev Postgres'
// init script gives its read-only role (the rights of
// db/grants/api_readonly.sql, through default privileges since the tables
// come later), including default_transaction_read_only.
func TestCloudNativePGGrantsMatchTheDevPostgres(t *testing.T) {
	cluster := find(t, render(t, "--set", "cloudnativepg.enabled=true"), "Cluster", cnpgCluster)
	var cnpg []string
	for _, s := range listAt(cluster, "spec.bootstrap.initdb.postInitApplicationSQL") {
		cnpg = append(cnpg, s.(string))
	}
	if len(cnpg) == 0 || cnpg[0] != `CREATE ROLE "rickmorty_api" NOLOGIN` {
		t.Errorf("postInitApplicationSQL = %q, want it to create the role first (NOLOGIN: the managed role adds LOGIN and the password)", cnpg)
	}

	initdb := find(t, render(t, values(t, "full-values.yaml")...), "ConfigMap", "rickmorty-postgres-initdb")
	script, _ := mapAt(initdb, "data")["10-readonly-role.sh"].(string)
	_, body, _ := strings.Cut(script, "<<'SQL'\n")
	body, _, _ = strings.Cut(body, "\nSQL")
	replacer := strings.NewReplacer(`:"ro_user"`, `"rickmorty_api"`, `:"owner"`, `"rickmorty"`, `:"db"`, `"rickmorty"`)
	var dev []string
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSuffix(strings.TrimSpace(line), ";")
		if strings.HasPrefix(line, "GRANT") || strings.HasPrefix(line, "ALTER") {
			dev = append(dev, replacer.Replace(line))
		}
	}
	if len(dev) < 5 {
		t.Fatalf("found %d GRANT/ALTER statements in the dev init script: %q", len(dev), body)
	}
	sort.Strings(dev)
	got := slices.Clone(cnpg[1:])
	sort.Strings(got)
	if !reflect.DeepEqual(got, dev) {
		t.Errorf("CloudNativePG bootstrap grants\n  %q\ndiffer from the dev Postgres'\n  %q", got, dev)
	}
}

func TestCloudNativePGCIValues(t *testing.T) {
	objs := render(t, values(t, "cloudnativepg-values.yaml")...)
	cluster := find(t, objs, "Cluster", cnpgCluster)
	if str(cluster, "spec.imageName") != "ghcr.io/cloudnative-pg/postgresql:17.6-standard-trixie" || str(cluster, "spec.storage.storageClass") != "fast-ssd" || str(cluster, "spec.storage.size") != "20Gi" {
		t.Errorf("imageName %q, storage %v", str(cluster, "spec.imageName"), get(cluster, "spec.storage"))
	}
	if p := stringMap(mapAt(cluster, "spec.postgresql.parameters")); p["max_connections"] != "200" || p["shared_buffers"] != "256MB" {
		t.Errorf("postgresql.parameters = %v", p)
	}
	if str(cluster, "spec.affinity.podAntiAffinityType") != "required" || get(cluster, "spec.bootstrap.initdb.database") != "rickmorty" {
		t.Errorf("extraSpec not merged next to the chart's fields: affinity %v, bootstrap %v", get(cluster, "spec.affinity"), get(cluster, "spec.bootstrap"))
	}
	pooler := find(t, objs, "Pooler", cnpgPooler)
	if get(pooler, "spec.instances") != 3 || str(pooler, "spec.deploymentStrategy.type") != "RollingUpdate" {
		t.Errorf("Pooler instances %v, deploymentStrategy %v", get(pooler, "spec.instances"), get(pooler, "spec.deploymentStrategy"))
	}
	if p := stringMap(mapAt(pooler, "spec.pgbouncer.parameters")); p["max_client_conn"] != "2000" || p["query_wait_timeout"] != "30" {
		t.Errorf("pgbouncer parameters = %v", p)
	}
}

func TestCloudNativePGNetworkPolicies(t *testing.T) {
	objs := render(t, "--set", "cloudnativepg.enabled=true")
	labels := func(kind string, name string) map[string]string {
		return podLabels(find(t, objs, kind, name))
	}
	instancePod := map[string]string{"cnpg.io/cluster": cnpgCluster, "cnpg.io/podRole": "instance", "cnpg.io/instanceName": cnpgCluster + "-1"}
	poolerPod := map[string]string{"cnpg.io/cluster": cnpgCluster, "cnpg.io/poolerName": cnpgPooler, "cnpg.io/podRole": "pooler"}
	otherCluster := map[string]string{"cnpg.io/cluster": "other", "cnpg.io/podRole": "instance"}

	// reaches reports whether the policies let pods with these labels open
	// TCP 5432 to a pod with the target labels.
	reaches := func(from, to map[string]string) bool {
		for _, np := range ofKind(objs, "NetworkPolicy") {
			if !matches(mapAt(np, "spec.podSelector"), from) {
				continue
			}
			for _, r := range listAt(np, "spec.egress") {
				portOK := false
				for _, p := range listAt(r, "ports") {
					portOK = portOK || (get(p, "port") == 5432 && get(p, "protocol") == "TCP")
				}
				for _, peer := range listAt(r, "to") {
					if sel := mapAt(peer, "podSelector"); portOK && mapAt(peer, "namespaceSelector") == nil && matches(sel, to) {
						return true
					}
				}
			}
		}
		return false
	}
	api := labels("Deployment", apiName)
	ing := labels("Deployment", ingesterName)
	mig := labels("Job", migrateName+"-r1")
	for _, c := range []struct {
		what     string
		from, to map[string]string
		want     bool
	}{
		{"api -> instances", api, instancePod, true},
		{"api -> pooler", api, poolerPod, true},
		{"ingester -> instances", ing, instancePod, true},
		{"migrate -> instances", mig, instancePod, true},
		{"ingester -> pooler", ing, poolerPod, false},
		{"api -> another cluster", api, otherCluster, false},
	} {
		if got := reaches(c.from, c.to); got != c.want {
			t.Errorf("%s: reachable by pod selector = %v, want %v", c.what, got, c.want)
		}
	}
	if np := lookup(render(t, "--set", "cloudnativepg.enabled=true", "--set", "global.networkPolicy.enabled=false"), "NetworkPolicy", cnpgCluster+"-clients"); np != nil {
		t.Error("global.networkPolicy.enabled=false still renders the CloudNativePG egress policy")
	}
}

func TestCloudNativePGWithoutPooler(t *testing.T) {
	objs := render(t, "--set", "cloudnativepg.enabled=true", "--set", "cloudnativepg.pooler.enabled=false", "--set", "cloudnativepg.cluster.instances=1")
	if p := ofKind(objs, "Pooler"); len(p) != 0 {
		t.Errorf("pooler.enabled=false renders Pooler %s", p[0].name())
	}
	if get(find(t, objs, "Cluster", cnpgCluster), "spec.instances") != 1 {
		t.Error("cluster.instances=1 not rendered")
	}
	if _, ok := secretData(t, find(t, objs, "Secret", dbSecret))["api-database-read-url"]; ok {
		t.Error("without the pooler the Secret still has a read URL; the API should read from DATABASE_URL")
	}
	if lookup(objs, "NetworkPolicy", cnpgPooler+"-clients") != nil {
		t.Error("without the pooler its NetworkPolicy is still rendered")
	}
	// A read-write pooler needs no standby.
	rw := render(t, "--set", "cloudnativepg.enabled=true", "--set", "cloudnativepg.pooler.type=rw", "--set", "cloudnativepg.cluster.instances=1")
	p := find(t, rw, "Pooler", "rickmorty-db-pooler-rw")
	if str(p, "spec.type") != "rw" {
		t.Errorf("pooler type = %q", str(p, "spec.type"))
	}
	u := parseURL(t, "read URL", secretData(t, find(t, rw, "Secret", dbSecret))["api-database-read-url"])
	if u.Host != "rickmorty-db-pooler-rw.rickmorty.svc:5432" {
		t.Errorf("read URL host = %q", u.Host)
	}
}

func TestCloudNativePGValuesAreChecked(t *testing.T) {
	on := []string{"--set", "cloudnativepg.enabled=true"}
	for _, c := range []struct {
		set  []string
		want string // part of the error; "" for any schema error
	}{
		{[]string{"--set", "postgres.enabled=true"}, "cloudnativepg.enabled and postgres.enabled are exclusive"},
		{[]string{"--set", "global.database.existingSecret=db"}, "global.database.existingSecret must stay empty"},
		{[]string{"--set", "global.database.api.url=postgres://a@db/x", "--set", "global.database.ingester.url=postgres://b@db/x"}, "global.database.api.url, global.database.ingester.url must stay empty"},
		{[]string{"--set", "cloudnativepg.cluster.instances=1"}, "leaves none"},
		{[]string{"--set", "cloudnativepg.apiRole.name=rickmorty"}, "needs a read-only role of its own"},
		{[]string{"--set", "global.fullnameOverride=a-rather-long-base-name-for-a-rickmorty-release1"}, "set cloudnativepg.cluster.name"},
		{[]string{"--set", "cloudnativepg.cluster.name=1db"}, ""},
		{[]string{"--set", "cloudnativepg.cluster.instances=0"}, ""},
		{[]string{"--set", "cloudnativepg.cluster.instancez=3"}, ""},
		{[]string{"--set", "cloudnativepg.pooler.poolMode=statement"}, ""},
		{[]string{"--set", "cloudnativepg.pooler.type=replica"}, ""},
		{[]string{"--set", "cloudnativepg.pooler.instances=0"}, ""},
		{[]string{"--set-string", "cloudnativepg.pooler.parameters.max_client_conns=10"}, ""},  // not a PgBouncer setting CloudNativePG allows
		{[]string{"--set-json", `cloudnativepg.pooler.parameters={"max_client_conn":10}`}, ""}, // not a string
		{[]string{"--set-json", `cloudnativepg.cluster.parameters={"max_connections":200}`}, ""},
		{[]string{"--set", "cloudnativepg.apiRole.name=pg_reader"}, ""},
		{[]string{"--set", "cloudnativepg.owner=postgres"}, ""},
		{[]string{"--set", "cloudnativepg.database=Rick-Morty"}, ""},
		{[]string{"--set", "cloudnativepg.apiRole.connectionLimit=0"}, ""},
		{[]string{"--set", "cloudnativepg.sslMode=verify-full"}, ""},
		{[]string{"--set", "cloudnativepg.cluster.primaryUpdateStrategy=auto"}, ""},
		{[]string{"--set", "cloudnativepg.cluster.storage.size=lots"}, ""},
	} {
		_, err := tryRender(append(slices.Clone(on), c.set...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want a failure%s", c.set, err, map[bool]string{true: "", false: " containing " + c.want}[c.want == ""])
		}
	}
	// The exclusion holds whichever way round it is set.
	if _, err := tryRender("--set", "postgres.enabled=true", "--set", "cloudnativepg.enabled=true"); err == nil {
		t.Error("postgres.enabled with cloudnativepg.enabled rendered")
	}
}

func TestCloudNativePGNotes(t *testing.T) {
	notes, err := helmNotes("--set", "cloudnativepg.enabled=true")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"CloudNativePG operator and\nits CRDs (postgresql.cnpg.io/v1) must be installed before this release",
		`Cluster "rickmorty-db": 3 instance(s) (one primary, 2 hot standby(s))`,
		`Pooler "rickmorty-db-pooler-ro": 2 PgBouncer pod(s), transaction pooling, to rickmorty-db-ro`,
		"DATABASE_READ_URL (reads) -> rickmorty-db-pooler-ro",
		"ingester and migrations -> rickmorty-db-rw",
		"an ordinary Job per revision",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES lack %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "no database is configured") {
		t.Errorf("NOTES warn that no database is configured:\n%s", notes)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
