//! The API groups serin serves. `serin.dev` is the native one; `flagger.app` is Flagger's, served
//! in drop-in mode (`--flagger-api`) so a cluster's Canaries, MetricTemplates and AlertProviders
//! keep working with nothing in git changed.
//!
//! The same Rust types carry both groups: a `flagger.app` object is read into a [`Canary`] (its
//! fields are Flagger's by design), and the group it came from travels beside it as an
//! [`ApiGroup`] to every place that names it in the API: the status and finalizer writes, the
//! events' object reference, the owner references of what serin creates for it (the garbage
//! collector deletes a dependent whose owner's apiVersion does not resolve to the owner), and
//! the MetricTemplates and AlertProviders it refers to, which live in the same group.
//!
//! [`FlaggerCanary`] and its twins are the `flagger.app` kinds as typed resources: the native
//! type under Flagger's group, for the watches and reads.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::{Deserialize, Serialize};

use super::{AlertProvider, Canary, MetricTemplate};

/// The version both groups serve.
pub const VERSION: &str = "v1beta1";

/// The group a Canary (and everything it refers to) was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ApiGroup {
    /// `serin.dev`, serin's own.
    #[default]
    Serin,
    /// `flagger.app`, Flagger's, served in drop-in mode.
    Flagger,
}

impl ApiGroup {
    pub const ALL: [Self; 2] = [Self::Serin, Self::Flagger];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Serin => "serin.dev",
            Self::Flagger => "flagger.app",
        }
    }

    /// `group/v1beta1`.
    pub fn api_version(self) -> String {
        format!("{}/{VERSION}", self.name())
    }

    /// The group of an `apiVersion` (`flagger.app/v1beta1` -> Flagger), None for any other.
    pub fn of_api_version(api_version: &str) -> Option<Self> {
        let (group, version) = api_version.split_once('/')?;
        (version == VERSION)
            .then(|| Self::ALL.into_iter().find(|g| g.name() == group))
            .flatten()
    }

    /// The controller owner reference of objects serin creates for `canary`, naming the
    /// Canary in this group. None for an object without a uid (never one read from the API).
    pub fn owner_reference(self, canary: &Canary) -> Option<OwnerReference> {
        let mut owner = canary.controller_owner_ref(&())?;
        owner.api_version = self.api_version();
        Some(owner)
    }

    /// The object reference of `canary` in this group, for events.
    pub fn object_reference(self, canary: &Canary) -> k8s_openapi::api::core::v1::ObjectReference {
        let mut reference = canary.object_ref(&());
        reference.api_version = Some(self.api_version());
        reference
    }
}

impl std::fmt::Display for ApiGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A Canary as the controller receives it from one group's watch.
pub trait Served {
    const GROUP: ApiGroup;
    fn canary(&self) -> &Canary;
}

impl Served for Canary {
    const GROUP: ApiGroup = ApiGroup::Serin;
    fn canary(&self) -> &Canary {
        self
    }
}

impl Served for FlaggerCanary {
    const GROUP: ApiGroup = ApiGroup::Flagger;
    fn canary(&self) -> &Canary {
        &self.0
    }
}

/// A serin resource type that has a twin under `flagger.app`.
pub trait Twin: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Sized {
    /// The `flagger.app` type holding the same object.
    type Flagger: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Into<Self>;
}

/// Declares the `flagger.app` twin of a native type: the same object under Flagger's group.
/// Serialization is the native type's (writes go through JSON patches that name the group
/// themselves); reading is all a twin is for.
macro_rules! flagger_twin {
    ($(#[$doc:meta])* $twin:ident, $native:ty) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
        #[serde(transparent)]
        pub struct $twin(pub $native);

        impl Resource for $twin {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                <$native as Resource>::kind(&())
            }
            fn group(_: &()) -> Cow<'_, str> {
                ApiGroup::Flagger.name().into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                VERSION.into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                <$native as Resource>::plural(&())
            }
            fn meta(&self) -> &ObjectMeta {
                self.0.meta()
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                self.0.meta_mut()
            }
        }

        impl From<$twin> for $native {
            fn from(twin: $twin) -> Self {
                twin.0
            }
        }

        impl Twin for $native {
            type Flagger = $twin;
        }
    };
}

flagger_twin!(
    /// `flagger.app/v1beta1` Canary.
    FlaggerCanary,
    Canary
);
flagger_twin!(
    /// `flagger.app/v1beta1` MetricTemplate.
    FlaggerMetricTemplate,
    MetricTemplate
);
flagger_twin!(
    /// `flagger.app/v1beta1` AlertProvider.
    FlaggerAlertProvider,
    AlertProvider
);

#[cfg(test)]
mod tests {
    use super::*;

    fn canary() -> Canary {
        serde_yaml_ng::from_str(
            "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: podinfo, namespace: test, uid: 1234}\nspec:\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}\n  service: {port: 9898}\n  analysis: {interval: 1m, threshold: 5, stepWeight: 10, maxWeight: 50}\n",
        )
        .unwrap()
    }

    #[test]
    fn a_flagger_canary_reads_into_the_native_type() {
        let twin: FlaggerCanary = serde_yaml_ng::from_str(
            "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: podinfo}\nspec:\n  targetRef: {name: podinfo}\n  service: {port: 9898}\n  analysis: {stepWeight: 10}\n",
        )
        .unwrap();
        let canary: Canary = twin.into();
        assert_eq!(canary.spec.target_ref.name, "podinfo");
    }

    #[test]
    fn twins_name_flaggers_group_and_the_native_kinds() {
        assert_eq!(FlaggerCanary::api_version(&()), "flagger.app/v1beta1");
        assert_eq!(FlaggerCanary::plural(&()), "canaries");
        assert_eq!(FlaggerMetricTemplate::kind(&()), "MetricTemplate");
        assert_eq!(FlaggerAlertProvider::plural(&()), "alertproviders");
        assert_eq!(Canary::api_version(&()), "serin.dev/v1beta1");
    }

    #[test]
    fn owner_and_object_references_name_the_canarys_group() {
        let canary = canary();
        let owner = ApiGroup::Flagger.owner_reference(&canary).unwrap();
        assert_eq!(owner.api_version, "flagger.app/v1beta1");
        assert_eq!(owner.uid, "1234");
        assert_eq!(owner.controller, Some(true));
        let native = ApiGroup::Serin.owner_reference(&canary).unwrap();
        assert_eq!(native.api_version, "serin.dev/v1beta1");
        let reference = ApiGroup::Flagger.object_reference(&canary);
        assert_eq!(
            reference.api_version.as_deref(),
            Some("flagger.app/v1beta1")
        );
        assert_eq!(reference.name.as_deref(), Some("podinfo"));
    }

    #[test]
    fn groups_are_recognised_by_api_version_only_in_v1beta1() {
        assert_eq!(
            ApiGroup::of_api_version("flagger.app/v1beta1"),
            Some(ApiGroup::Flagger)
        );
        assert_eq!(
            ApiGroup::of_api_version("serin.dev/v1beta1"),
            Some(ApiGroup::Serin)
        );
        assert_eq!(ApiGroup::of_api_version("flagger.app/v1alpha3"), None);
        assert_eq!(ApiGroup::of_api_version("apps/v1"), None);
    }
}
