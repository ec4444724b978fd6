package backupsel

import "sort"

// learn fills the backup's identity from what base.tar held.
func (b *Backup) learn(st *scanState) error {
	if st.pgVersion == nil {
		return reasonf("base.tar has no PG_VERSION: not a backup of a data directory")
	}
	major, err := parsePGVersion(st.pgVersion)
	if err != nil {
		return err
	}
	b.Major, b.PGVersion = major, major.String()
	if st.pgControl == nil {
		return reasonf("base.tar has no global/pg_control")
	}
	if b.SystemIdentifier, err = systemIdentifier(st.pgControl); err != nil {
		return err
	}
	if st.backupLabel == nil {
		return reasonf("base.tar has no backup_label: not taken with pg_basebackup or the backup API")
	}
	if b.Label, err = parseBackupLabel(st.backupLabel); err != nil {
		return err
	}
	b.GroupAccess = st.groupAccess
	if st.haveTablespaceMap {
		b.tablespaceMap = true
		if b.Tablespaces, err = parseTablespaceMap(st.tablespaceMap, b.Major); err != nil {
			return err
		}
	} else {
		for oid, loc := range st.links {
			b.Tablespaces = append(b.Tablespaces, Tablespace{OID: oid, Location: loc})
		}
	}
	return b.checkTablespaceArchives()
}

// checkTablespaceArchives checks that every tablespace has its archive and
// every tablespace archive its tablespace.
func (b *Backup) checkTablespaceArchives() error {
	sort.Slice(b.Tablespaces, func(i, j int) bool { return b.Tablespaces[i].OID < b.Tablespaces[j].OID })
	for _, ts := range b.Tablespaces {
		found := false
		for _, a := range b.Archives {
			found = found || (a.Role == RoleTablespace && a.OID == ts.OID)
		}
		if !found {
			return reasonf("tablespace %d (%s) has no %d.tar", ts.OID, ts.Location, ts.OID)
		}
	}
	for _, a := range b.Archives {
		if a.Role != RoleTablespace {
			continue
		}
		known := false
		for _, ts := range b.Tablespaces {
			known = known || ts.OID == a.OID
		}
		if !known {
			return reasonf("%s is not a tablespace of this backup (no pg_tblspc/%d link nor tablespace_map line)", a.Name, a.OID)
		}
	}
	return nil
}
