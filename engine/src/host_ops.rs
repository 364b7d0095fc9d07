//! What the engine does with the host's shared resources: the templates containers
//! overlay, and the state dir's disk that their images share.

use std::path::Path;

use crate::error::Result;
use crate::template::{self, TemplateInfo};
use crate::{capacity, require_root, spec, Engine, LOCK_TIMEOUT};

impl Engine {
    /// Applies the provider's disk policy (over-commit ratio, reserve).
    pub fn with_disk_policy(mut self, policy: capacity::DiskPolicy) -> Result<Self> {
        policy.validate()?;
        self.disk = policy;
        Ok(self)
    }

    /// The provider's disk policy this engine applies.
    pub fn disk_policy(&self) -> &capacity::DiskPolicy {
        &self.disk
    }

    /// The state dir's disk: size, free space, quotas promised and allowed, the reserve.
    pub fn disk_capacity(&self) -> Result<capacity::DiskCapacity> {
        let promised = self.configs()?.iter().map(|c| c.limits.disk).sum();
        capacity::capacity(self.layout.root(), &self.disk, promised)
    }

    /// Gives up the disk reserve if the state dir's disk is full (so the panel, its
    /// database and destroys keep working), or takes it back once there is room. Returns
    /// whether it was given up now. Cheap (one `statvfs`): call it often.
    pub fn relieve_disk(&self) -> Result<bool> {
        capacity::relieve(self.layout.root(), &self.disk)
    }

    /// Installed templates, without counting their containers: reads only the templates
    /// directory (not every container's config), for checks on hot paths.
    pub fn installed_templates(&self) -> Result<Vec<TemplateInfo>> {
        template::list(&self.layout)
    }

    /// Installed templates, with how many containers use each.
    pub fn templates(&self) -> Result<Vec<TemplateInfo>> {
        let mut list = template::list(&self.layout)?;
        let configs = self.configs()?;
        for t in &mut list {
            t.containers = configs.iter().filter(|c| c.template == t.name).count();
        }
        Ok(list)
    }

    /// Deletes a template no container uses (refused, changing nothing, while any does).
    #[tracing::instrument(skip(self))]
    pub fn delete_template(&self, name: &str) -> Result<()> {
        require_root("delete templates")?;
        spec::validate_name(name)?;
        let _g = self.layout.lock_global(LOCK_TIMEOUT)?;
        let users = self
            .configs()?
            .iter()
            .filter(|c| c.template == name)
            .count();
        if users > 0 {
            return Err(crate::Error::TemplateInUse(name.to_string(), users));
        }
        template::delete(&self.layout, name)
    }

    /// Builds the `host` template from the host's own OS.
    #[tracing::instrument(skip(self))]
    pub fn build_host_template(&self) -> Result<TemplateInfo> {
        require_root("build templates")?;
        let _g = self.layout.lock_global(LOCK_TIMEOUT)?;
        template::build_host(&self.layout)
    }

    /// Builds the `host` template unless it exists; returns whether it was built.
    pub fn ensure_host_template(&self) -> Result<bool> {
        if template::exists(&self.layout, "host") && template::host_is_current(&self.layout) {
            return Ok(false);
        }
        require_root("build templates")?;
        let _g = self.layout.lock_global(LOCK_TIMEOUT)?;
        if template::exists(&self.layout, "host") {
            if template::host_is_current(&self.layout) {
                return Ok(false);
            }
            // Built by an older engine (with the host's own services enabled): rebuilt
            // while no container uses it, kept (and said) otherwise.
            let users = self
                .configs()?
                .iter()
                .filter(|c| c.template == "host")
                .count();
            if users > 0 {
                tracing::warn!(
                    containers = users,
                    "the host template predates this engine (it enables the host's own \
                     services in containers that boot systemd); rebuild it once unused"
                );
                return Ok(false);
            }
            template::delete(&self.layout, "host")?;
        }
        template::build_host(&self.layout)?;
        Ok(true)
    }

    /// Imports template `name` from a root filesystem directory or tarball.
    pub fn import_template(&self, name: &str, source: &Path) -> Result<TemplateInfo> {
        self.import_template_with(name, source, &template::ImportOptions::default())
    }

    /// Imports template `name` within the bounds and rules of `opts`.
    #[tracing::instrument(skip(self))]
    pub fn import_template_with(
        &self,
        name: &str,
        source: &Path,
        opts: &template::ImportOptions,
    ) -> Result<TemplateInfo> {
        spec::validate_name(name)?;
        require_root("import templates")?;
        let _g = self.layout.lock_global(LOCK_TIMEOUT)?;
        template::import(&self.layout, name, source, opts)
    }
}
