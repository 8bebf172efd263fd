package io.lakehouseml.delta;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.analysis.NoSuchNamespaceException;
import org.apache.spark.sql.catalyst.analysis.NoSuchTableException;
import org.apache.spark.sql.connector.catalog.Column;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.connector.catalog.StagedTable;
import org.apache.spark.sql.connector.catalog.SupportsNamespaces;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableCatalog;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.delta.catalog.DeltaCatalog;
import org.apache.spark.sql.internal.SQLConf;
import org.apache.spark.sql.types.StructType;

/**
 * Spark session catalog ({@code spark_catalog}) that makes the Delta tables of a lake resolvable
 * by name in Spark SQL without any metastore.
 *
 * <p><b>Why.</b> Our tables are plain Delta directories under a lake root, written by Spark,
 * by our Python writer and by delta-rs in other processes. Nobody registers them in a Hive
 * metastore, so {@code spark.table("mlflow.metrics")}, {@code MERGE INTO mlflow.metrics},
 * {@code DESCRIBE HISTORY mlflow.metrics} etc. would fail with "table not found". This catalog
 * keeps all of {@link DeltaCatalog}'s behaviour and adds a fallback: when the session catalog
 * does not know an identifier {@code n1...nk.t}, it maps it to the directory
 * {@code <root>/n1/.../nk/t} ({@code default.t} maps to {@code <root>/t}) and, if that directory
 * holds a {@code _delta_log}, loads it exactly like the path identifier
 * {@code delta.`<root>/n1/.../nk/t`}.
 *
 * <p><b>Rules.</b>
 * <ul>
 *   <li>The root is read at every lookup from the session's runtime conf
 *       {@value #ROOT_CONF} (falling back to the environment variable {@value #ROOT_ENV});
 *       a plain absolute path or a URI ({@code file:/...}, {@code file:///...}, or any Hadoop
 *       scheme). Nothing is cached: tables created by other processes are visible immediately and
 *       sessions with different roots ({@code spark.newSession()}) never see each other's tables.
 *   <li>A table registered in the session catalog always wins over a lake directory.
 *   <li>{@code CREATE TABLE ns.t ... USING DELTA} (and CTAS / REPLACE) without {@code LOCATION},
 *       for a name not registered in the session catalog, creates the table as a path table at
 *       {@code <root>/ns/t} when a root is set.
 *   <li>Identifier parts containing {@code /}, {@code \}, {@code :}, {@code ..}, NUL, or starting
 *       with {@code .} are never mapped into the lake, so a name cannot escape the root.
 * </ul>
 *
 * <p>Configure with {@code spark.sql.catalog.spark_catalog=io.lakehouseml.delta.LakeCatalog}.
 */
public class LakeCatalog extends DeltaCatalog {

    /** Session conf holding the lake root. */
    public static final String ROOT_CONF = "spark.lakehouse.root";
    /** Environment variable used when {@link #ROOT_CONF} is unset. */
    public static final String ROOT_ENV = "LAKEHOUSE_ROOT";

    private static final String DELTA_LOG = "_delta_log";
    private static final String DEFAULT_NS = "default";

    // ------------------------------------------------------------------ root / path mapping

    /** The lake root of the active session, read now (never cached); null if unset. */
    protected Path lakeRoot() {
        String root = null;
        try {
            root = SQLConf.get().getConfString(ROOT_CONF, null);
        } catch (RuntimeException ignored) {
            // no active conf
        }
        if (root == null || root.trim().isEmpty()) {
            root = System.getenv(ROOT_ENV);
        }
        if (root == null || root.trim().isEmpty()) {
            return null;
        }
        return parseRoot(root.trim());
    }

    static Path parseRoot(String root) {
        if (root.regionMatches(true, 0, "file:", 0, 5)) {
            File f;
            try {
                f = new File(new URI(root));                    // file:/a%20b, file:///a%20b
            } catch (Exception notAUri) {                       // e.g. "file:/a b" (unescaped)
                String p = root.substring(5);
                if (p.startsWith("//")) {                       // file:///x or file://localhost/x
                    int slash = p.indexOf('/', 2);
                    p = slash < 0 ? "/" : p.substring(slash);
                }
                f = new File(p);
            }
            return localPath(f);
        }
        if (root.startsWith("/") || new File(root).isAbsolute()) {
            return localPath(new File(root));
        }
        Path p = new Path(root);
        if (p.toUri().getScheme() == null) {                    // relative path: resolve locally
            return localPath(new File(root));
        }
        return p;
    }

    private static Path localPath(File f) {
        // (scheme, authority, path) constructor takes a decoded path: spaces and '%' are literal.
        return new Path("file", null, f.getAbsoluteFile().toPath().normalize().toString());
    }

    private static boolean isLocal(Path p) {
        return "file".equalsIgnoreCase(p.toUri().getScheme());
    }

    static boolean isSafePart(String part) {
        return part != null && !part.isEmpty() && !part.startsWith(".") && !part.contains("..")
            && part.indexOf('/') < 0 && part.indexOf('\\') < 0 && part.indexOf(':') < 0
            && part.indexOf('\0') < 0;
    }

    private static boolean isSafe(String[] namespace) {
        for (String part : namespace) {
            if (!isSafePart(part)) {
                return false;
            }
        }
        return true;
    }

    private static Path child(Path parent, String name) {
        String p = parent.toUri().getPath();
        return new Path(parent.toUri().getScheme(), parent.toUri().getAuthority(),
            (p.endsWith("/") ? p : p + "/") + name);
    }

    /** Directory of namespace {@code ns} under {@code root}; null if a part is unsafe. */
    static Path namespaceDir(Path root, String[] ns) {
        if (!isSafe(ns)) {
            return null;
        }
        if (ns.length == 0 || (ns.length == 1 && DEFAULT_NS.equalsIgnoreCase(ns[0]))) {
            return root;
        }
        Path dir = root;
        for (String part : ns) {
            dir = child(dir, part);
        }
        return dir;
    }

    /** Lake directory of {@code ident} under the current root; null if no root / unsafe name. */
    protected Path lakeTablePath(Identifier ident) {
        Path root = lakeRoot();
        if (root == null || isPathIdentifier(ident) || !isSafePart(ident.name())) {
            return null;
        }
        Path dir = namespaceDir(root, ident.namespace());
        return dir == null ? null : child(dir, ident.name());
    }

    private static Identifier pathIdentifier(Path tablePath) {
        String name = isLocal(tablePath) ? tablePath.toUri().getPath() : tablePath.toString();
        return Identifier.of(new String[] {"delta"}, name);
    }

    private static Configuration hadoopConf() {
        try {
            SparkSession active = SparkSession.active();
            if (active instanceof org.apache.spark.sql.classic.SparkSession) {
                return ((org.apache.spark.sql.classic.SparkSession) active)
                    .sessionState().newHadoopConf();
            }
        } catch (RuntimeException ignored) {
            // no active session
        }
        return new Configuration();
    }

    private static FileSystem fs(Path p) {
        try {
            return p.getFileSystem(hadoopConf());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static boolean isDirectory(FileSystem fs, Path p) {
        try {
            return fs.getFileStatus(p).isDirectory();
        } catch (FileNotFoundException e) {
            return false;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static boolean isDeltaTableDir(FileSystem fs, Path p) {
        return isDirectory(fs, child(p, DELTA_LOG));
    }

    /** Names of the visible sub-directories of {@code dir} (skips {@code _x} and {@code .x}). */
    private static List<String> subdirs(FileSystem fs, Path dir) {
        List<String> out = new ArrayList<>();
        FileStatus[] statuses;
        try {
            statuses = fs.listStatus(dir);
        } catch (FileNotFoundException e) {
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        for (FileStatus st : statuses) {
            String name = st.getPath().getName();
            if (st.isDirectory() && isSafePart(name) && !name.startsWith("_")) {
                out.add(name);
            }
        }
        out.sort(null);
        return out;
    }

    private static List<String> deltaTablesIn(FileSystem fs, Path dir) {
        List<String> out = new ArrayList<>();
        for (String name : subdirs(fs, dir)) {
            if (isDeltaTableDir(fs, child(dir, name))) {
                out.add(name);
            }
        }
        return out;
    }

    /** The lake directory of {@code ident} if it currently holds a Delta table, else null. */
    protected Path existingLakeTable(Identifier ident) {
        Path p = lakeTablePath(ident);
        return p != null && isDeltaTableDir(fs(p), p) ? p : null;
    }

    // ------------------------------------------------------------------ exceptions

    @SuppressWarnings("unchecked")
    private static <E extends Throwable> RuntimeException sneakyThrow(Throwable t) throws E {
        throw (E) t;
    }

    private static boolean isNotFound(Throwable t) {
        return t instanceof NoSuchTableException || t instanceof NoSuchNamespaceException;
    }

    private interface Load {
        Table load(Identifier ident) throws Exception;
    }

    /** Delegate first; if the name is unknown there, fall back to the lake directory. */
    private Table loadWithFallback(Identifier ident, Load load) {
        try {
            return load.load(ident);
        } catch (Exception e) {
            if (!isNotFound(e) && !(ident.namespace().length > 1
                    && e instanceof org.apache.spark.sql.AnalysisException)) {
                throw sneakyThrow(e);
            }
            Path lake;
            try {
                lake = existingLakeTable(ident);
            } catch (RuntimeException lookupFailed) {
                e.addSuppressed(lookupFailed);
                throw sneakyThrow(e);
            }
            if (lake == null) {
                throw sneakyThrow(e);
            }
            try {
                return load.load(pathIdentifier(lake));
            } catch (Exception e2) {
                throw sneakyThrow(e2);
            }
        }
    }

    // ------------------------------------------------------------------ tables

    @Override
    public Table loadTable(Identifier ident) {
        return loadWithFallback(ident, super::loadTable);
    }

    @Override
    public Table loadTable(Identifier ident, String version) {
        return loadWithFallback(ident, id -> super.loadTable(id, version));
    }

    @Override
    public Table loadTable(Identifier ident, long timestamp) {
        return loadWithFallback(ident, id -> super.loadTable(id, timestamp));
    }

    private boolean delegateTableExists(Identifier ident) {
        try {
            return super.tableExists(ident);
        } catch (RuntimeException e) {
            return false;               // e.g. multi-part namespaces the session catalog rejects
        }
    }

    @Override
    public boolean tableExists(Identifier ident) {
        return delegateTableExists(ident) || existingLakeTable(ident) != null;
    }

    @Override
    public Identifier[] listTables(String[] namespace) throws NoSuchNamespaceException {
        Map<String, Identifier> out = new LinkedHashMap<>();
        NoSuchNamespaceException missing = null;
        try {
            for (Identifier id : super.listTables(namespace)) {
                out.put(id.name(), id);
            }
        } catch (NoSuchNamespaceException e) {
            missing = e;
        } catch (RuntimeException e) {
            if (namespace.length <= 1) {
                throw e;
            }
        }
        Path root = lakeRoot();
        Path dir = root == null ? null : namespaceDir(root, namespace);
        if (dir != null) {
            FileSystem fs = fs(dir);
            if (isDirectory(fs, dir)) {
                missing = null;
                for (String t : deltaTablesIn(fs, dir)) {
                    out.putIfAbsent(t, Identifier.of(namespace, t));
                }
            }
        }
        if (missing != null) {
            throw missing;
        }
        if (out.isEmpty() && namespace.length > 1 && (dir == null || !isDirectory(fs(dir), dir))) {
            throw new NoSuchNamespaceException(namespace);
        }
        return out.values().toArray(new Identifier[0]);
    }

    // ------------------------------------------------------------------ namespaces

    private String[][] lakeNamespaces(String[] parent) {
        Path root = lakeRoot();
        Path dir = root == null ? null : (parent.length == 0 ? root : namespaceDir(root, parent));
        if (dir == null || (parent.length == 1 && DEFAULT_NS.equalsIgnoreCase(parent[0]))) {
            return new String[0][];
        }
        FileSystem fs = fs(dir);
        List<String[]> out = new ArrayList<>();
        for (String name : subdirs(fs, dir)) {
            Path sub = child(dir, name);
            if (!isDeltaTableDir(fs, sub) && !deltaTablesIn(fs, sub).isEmpty()) {
                String[] ns = Arrays.copyOf(parent, parent.length + 1);
                ns[parent.length] = name;
                out.add(ns);
            }
        }
        return out.toArray(new String[0][]);
    }

    private static String[][] union(String[][] a, String[][] b) {
        Set<List<String>> seen = new LinkedHashSet<>();
        for (String[] ns : a) {
            seen.add(Arrays.asList(ns));
        }
        for (String[] ns : b) {
            seen.add(Arrays.asList(ns));
        }
        String[][] out = new String[seen.size()][];
        int i = 0;
        for (List<String> ns : seen) {
            out[i++] = ns.toArray(new String[0]);
        }
        return out;
    }

    @Override
    public String[][] listNamespaces() throws NoSuchNamespaceException {
        return union(super.listNamespaces(), lakeNamespaces(new String[0]));
    }

    @Override
    public String[][] listNamespaces(String[] namespace) throws NoSuchNamespaceException {
        String[][] delegate;
        try {
            delegate = super.listNamespaces(namespace);
        } catch (NoSuchNamespaceException e) {
            if (!lakeNamespaceExists(namespace)) {
                throw e;
            }
            delegate = new String[0][];
        } catch (RuntimeException e) {
            delegate = new String[0][];
        }
        return union(delegate, lakeNamespaces(namespace));
    }

    private boolean lakeNamespaceExists(String[] namespace) {
        Path root = lakeRoot();
        Path dir = root == null ? null : namespaceDir(root, namespace);
        return dir != null && isDirectory(fs(dir), dir);
    }

    @Override
    public boolean namespaceExists(String[] namespace) {
        boolean delegate;
        try {
            delegate = super.namespaceExists(namespace);
        } catch (RuntimeException e) {
            delegate = false;
        }
        return delegate || lakeNamespaceExists(namespace);
    }

    @Override
    public Map<String, String> loadNamespaceMetadata(String[] namespace)
            throws NoSuchNamespaceException {
        try {
            return super.loadNamespaceMetadata(namespace);
        } catch (NoSuchNamespaceException e) {
            if (!lakeNamespaceExists(namespace)) {
                throw e;
            }
            Map<String, String> meta = new HashMap<>();
            meta.put(SupportsNamespaces.PROP_LOCATION,
                namespaceDir(lakeRoot(), namespace).toString());
            return meta;
        }
    }

    // ------------------------------------------------------------------ create / replace

    /**
     * Identifier to create/replace {@code ident} under: the lake path identifier when a root is
     * set, no LOCATION is given, the provider is Delta and the session catalog does not hold the
     * name; otherwise {@code ident} itself.
     */
    protected Identifier createTarget(Identifier ident, Map<String, String> properties) {
        if (isPathIdentifier(ident) || properties.containsKey(TableCatalog.PROP_LOCATION)) {
            return ident;
        }
        String provider = properties.get(TableCatalog.PROP_PROVIDER);
        if (provider != null && !"delta".equalsIgnoreCase(provider)) {
            return ident;
        }
        if (lakeRoot() == null || delegateTableExists(ident)) {
            return ident;
        }
        Path p = lakeTablePath(ident);
        if (p == null) {
            throw new IllegalArgumentException(
                "Invalid table name for the lake (parts must not contain '/', '\\', ':', '..' "
                    + "or start with '.'): " + ident);
        }
        return pathIdentifier(p);
    }

    private static Map<String, String> withDeltaProvider(Map<String, String> props) {
        if (props.containsKey(TableCatalog.PROP_PROVIDER)) {
            return props;
        }
        Map<String, String> copy = new HashMap<>(props);
        copy.put(TableCatalog.PROP_PROVIDER, "delta");
        return copy;
    }

    @Override
    public Table createTable(Identifier ident, Column[] columns, Transform[] partitions,
                             Map<String, String> properties) {
        Identifier target = createTarget(ident, properties);
        return super.createTable(target, columns, partitions,
            target == ident ? properties : withDeltaProvider(properties));
    }

    @Override
    public Table createTable(Identifier ident, StructType schema, Transform[] partitions,
                             Map<String, String> properties) {
        Identifier target = createTarget(ident, properties);
        return super.createTable(target, schema, partitions,
            target == ident ? properties : withDeltaProvider(properties));
    }

    @Override
    public StagedTable stageCreate(Identifier ident, Column[] columns, Transform[] partitions,
                                   Map<String, String> properties) {
        Identifier target = createTarget(ident, properties);
        return super.stageCreate(target, columns, partitions,
            target == ident ? properties : withDeltaProvider(properties));
    }

    @Override
    public StagedTable stageCreate(Identifier ident, StructType schema, Transform[] partitions,
                                   Map<String, String> properties) {
        Identifier target = createTarget(ident, properties);
        return super.stageCreate(target, schema, partitions,
            target == ident ? properties : withDeltaProvider(properties));
    }

    @Override
    public StagedTable stageReplace(Identifier ident, Column[] columns, Transform[] partitions,
                                    Map<String, String> properties) {
        Identifier target = createTarget(ident, properties);
        return super.stageReplace(target, columns, partitions,
            target == ident ? properties : withDeltaProvider(properties));
    }

    @Override
    public StagedTable stageReplace(Identifier ident, StructType schema, Transform[] partitions,
                                    Map<String, String> properties) {
        Identifier target = createTarget(ident, properties);
        return super.stageReplace(target, schema, partitions,
            target == ident ? properties : withDeltaProvider(properties));
    }

    @Override
    public StagedTable stageCreateOrReplace(Identifier ident, Column[] columns,
                                            Transform[] partitions,
                                            Map<String, String> properties) {
        Identifier target = createTarget(ident, properties);
        return super.stageCreateOrReplace(target, columns, partitions,
            target == ident ? properties : withDeltaProvider(properties));
    }

    @Override
    public StagedTable stageCreateOrReplace(Identifier ident, StructType schema,
                                            Transform[] partitions,
                                            Map<String, String> properties) {
        Identifier target = createTarget(ident, properties);
        return super.stageCreateOrReplace(target, schema, partitions,
            target == ident ? properties : withDeltaProvider(properties));
    }
}
